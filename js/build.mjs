// Build the live view's front end into ipy_stream/static/ (or $IPY_STREAM_JS_OUTDIR):
//   live.js  - one minified ES module (markdown-it, DOMPurify, highlight.js inside)
//   loader.js - the widget's `_esm`: unpacks live.js, which the kernel sends gzipped
//   live.css - the view's styles
//   THIRD_PARTY_LICENSES.txt - the licenses of the bundled packages
// Both bundles start with a stamp: the sha256 of the sources they were built from
// (see js/stamp.py, which computes the same hash to tell whether a build is stale).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.env.IPY_STREAM_JS_OUTDIR || join(here, "..", "ipy_stream", "static"));

// The files whose content decides the bundle: keep in step with stamp.py.
// ../ipy_stream/policy.json (the HTML policy, shared with ipy_stream/render.py)
// is bundled too.
function sourceFiles() {
  const files = ["../ipy_stream/policy.json", "build.mjs", "package-lock.json", "package.json"];
  const walk = (dir) => {
    for (const entry of readdirSync(join(here, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) files.push(path);
    }
  };
  walk("src");
  return files.sort();
}

export function sourceHash() {
  const hash = createHash("sha256");
  for (const file of sourceFiles()) {
    const content = readFileSync(join(here, file)).toString("latin1").replaceAll("\r\n", "\n");
    hash.update(file, "utf8");
    hash.update("\0");
    hash.update(Buffer.from(content, "latin1"));
    hash.update("\0");
  }
  return hash.digest("hex");
}

function licenses(metafile) {
  const packages = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input.split(sep).join("/"));
    if (match) packages.set(match[1], join(here, "node_modules", match[1]));
  }
  const parts = [
    "ipy_stream/static/live.js bundles the following packages (from the npm registry).\n",
  ];
  for (const name of [...packages.keys()].sort()) {
    const dir = packages.get(name);
    const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text = file ? readFileSync(join(dir, file), "utf8").trim() : "(no license file)";
    parts.push(`${"=".repeat(78)}\n${name} ${meta.version} (${meta.license})\n\n${text}\n`);
  }
  return parts.join("\n");
}

async function main() {
  const stamp = `/* ipy_stream live view: built by js/build.mjs from sources sha256:${sourceHash()}; bundled packages and their licenses: THIRD_PARTY_LICENSES.txt */`;
  mkdirSync(outdir, { recursive: true });
  const common = {
    bundle: true,
    minify: true,
    legalComments: "none",
    logLevel: "warning",
    banner: { js: stamp, css: stamp },
    absWorkingDir: here,
    // markdown-it always builds a linkify-it instance; linkify is off here.
    alias: { "linkify-it": "./src/no-linkify.js" },
  };
  const js = await esbuild.build({
    ...common,
    entryPoints: ["src/live.js"],
    format: "esm",
    target: ["es2022"],
    platform: "browser",
    outfile: join(outdir, "live.js"),
    metafile: true,
    define: { "process.env.NODE_ENV": '"production"' },
  });
  await esbuild.build({
    ...common,
    entryPoints: ["src/loader.js"],
    format: "esm",
    target: ["es2022"],
    platform: "browser",
    outfile: join(outdir, "loader.js"),
  });
  await esbuild.build({
    ...common,
    entryPoints: ["src/live.css"],
    outfile: join(outdir, "live.css"),
  });
  writeFileSync(join(outdir, "THIRD_PARTY_LICENSES.txt"), licenses(js.metafile));
  const size = readFileSync(join(outdir, "live.js")).length;
  console.log(`built ${relative(process.cwd(), join(outdir, "live.js")) || "live.js"} (${size} bytes)`);
}

if (!existsSync(join(here, "node_modules"))) {
  console.error("js/node_modules is missing: run `npm ci` in js/ first.");
  process.exit(1);
}
await main();
