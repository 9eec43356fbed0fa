// The module anywidget loads for each live view (the widget's `_esm`): about 1 kB.
// The view itself (live.js: markdown-it, DOMPurify, highlight.js; about
// 200 kB) comes as the `_bundle` trait, gzip-compressed, in a binary buffer of
// the widget's state: about a third of the bytes a JavaScript string would take
// over the kernel's channels and the WebSocket. It is unpacked with the browser's
// own DecompressionStream and imported once per page, whatever the number of views.

const MODULES = (globalThis.__ipyStreamModules ??= new Map());

function bytesOf(value) {
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new Error("ipy_stream: the widget state has no front-end bundle (_bundle)");
}

async function unpack(model) {
  if (typeof DecompressionStream !== "function") {
    throw new Error("ipy_stream: this browser lacks DecompressionStream; the answer appears when the stream ends");
  }
  const packed = new Blob([bytesOf(model.get("_bundle"))]);
  const code = await new Response(packed.stream().pipeThrough(new DecompressionStream("gzip"))).text();
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  try {
    return (await import(/* @vite-ignore */ url)).default;
  } finally {
    URL.revokeObjectURL(url);
  }
}

function live(model) {
  const key = model.get("_bundle_id") || "";
  let module = MODULES.get(key);
  if (!module) {
    module = unpack(model);
    MODULES.set(key, module);
    module.catch(() => MODULES.delete(key));
  }
  return module;
}

export default {
  async initialize(context) {
    return (await live(context.model)).initialize(context);
  },
  async render(context) {
    return (await live(context.model)).render(context);
  },
};
