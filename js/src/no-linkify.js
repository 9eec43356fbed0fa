// Stands in for linkify-it in the bundle: the live view never linkifies bare URLs
// (like ipy_stream/render.py, linkify is off), so markdown-it's instance is never used.
export class LinkifyIt {
  pretest() {
    return false;
  }

  test() {
    return false;
  }

  match() {
    return null;
  }

  matchAtStart() {
    return null;
  }
}

export default LinkifyIt;
