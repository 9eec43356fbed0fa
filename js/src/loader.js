// The module anywidget loads for each live view (the widget's `_esm`): about 1 kB.
// The view itself (live.js: markdown-it, DOMPurify, highlight.js; about
// 200 kB) is sent once per kernel, gzip-compressed, in a binary buffer of one
// hidden widget's state (ipy_stream/bundle.py's FrontEnd, whose `_library` is
// true): about a third of the bytes a JavaScript string would take over the
// kernel's channels and the WebSocket. It is unpacked with the browser's own
// DecompressionStream and imported once per page. A live view carries only the
// bundle's id, and waits for the module with that id, whichever of the page's
// widget models brings it, in whatever order a reloaded page restores them.

const MODULES = (globalThis.__ipyStreamFrontEnds ??= new Map());

function bytesOf(value) {
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return null;
}

async function unpack(bytes) {
  if (typeof DecompressionStream !== "function") {
    throw new Error("ipy_stream: this browser lacks DecompressionStream; the answer appears when the stream ends");
  }
  const packed = new Blob([bytes]);
  const code = await new Response(packed.stream().pipeThrough(new DecompressionStream("gzip"))).text();
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  try {
    return (await import(/* @vite-ignore */ url)).default;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** The page's entry for one bundle id: a promise of its module, settled once. */
function entry(key) {
  let found = MODULES.get(key);
  if (!found) {
    let resolve, reject;
    const module = new Promise((yes, no) => {
      resolve = yes;
      reject = no;
    });
    found = { module, resolve, reject, loading: false };
    MODULES.set(key, found);
  }
  return found;
}

/** The module for this model's bundle id, unpacked from its state if it carries it. */
function live(model) {
  const key = model.get("_bundle_id") || "";
  const found = entry(key);
  const bytes = bytesOf(model.get("_bundle"));
  if (bytes !== null && bytes.byteLength > 0 && !found.loading) {
    found.loading = true;
    unpack(bytes).then(found.resolve, (error) => {
      MODULES.delete(key); // a later model with the bytes may try again
      found.reject(error);
    });
  }
  return found.module;
}

export default {
  async initialize(context) {
    const module = live(context.model);
    if (context.model.get("_library")) {
      module.catch((error) => console.error(error));
      return undefined;
    }
    return (await module).initialize(context);
  },
  async render(context) {
    return (await live(context.model)).render(context);
  },
};
