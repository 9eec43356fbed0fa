// Prints {input: html} for every case in dialect-cases.json, rendered by the live
// view's Markdown (createMarkdown().render, before the sanitizer), as JSON, so
// that the Python tests can compare the dialect with ipy_stream/render.py.
// Run from anywhere: `node js/test/render-cases.mjs`.

import { readFileSync } from "node:fs";
import { createMarkdown } from "../src/markdown.js";

const cases = JSON.parse(readFileSync(new URL("./dialect-cases.json", import.meta.url), "utf8"));
const md = createMarkdown();
const rendered = Object.fromEntries(cases.map((text) => [text, md.render(text)]));
process.stdout.write(`${JSON.stringify(rendered, null, 1)}\n`);
