"""Does a page fit a narrow phone? One check, in the browser, that names what does not fit.

At 320 px, in the pseudo-locale and in every real one, no state may scroll sideways or
cut anything off. `layout_problems` runs one script in the page and returns every offender as
`{problem, selector, text, detail}`, so a failure reads as "p.passid-code 'AB3X-…' sticks out
past the right edge by 37px" rather than as a bare `False`.

What counts, for the element at `root` and every visible element inside it:
- the document scrolls sideways (`scrollWidth > clientWidth` on <html>);
- the element reaches past the viewport's left or right edge;
- its content is cut: wider or taller than its box while its overflow is hidden or clipped;
- its own text spills out of its box (overflow visible, content wider than the box): nothing is
  cut, but the words run over the border of a button or a card.

Screen-reader-only elements (a 1 px clipped box, by design) and what is inside them are skipped,
and so is the inside of an <svg> (the QR code's modules are drawn by their parent's box).
"""

from __future__ import annotations

from playwright.sync_api import Page

# A pixel of slack for sub-pixel rounding: a 0.5 px difference is not something a customer sees.
_LAYOUT_PROBLEMS = """
([rootSelector, slack]) => {
  const problems = [];
  const html = document.documentElement;
  const viewport = html.clientWidth;
  const describe = (el) => {
    const parts = [];
    for (let node = el; node && node.nodeType === 1 && parts.length < 4; node = node.parentElement) {
      let part = node.tagName.toLowerCase();
      if (node.id) part += "#" + node.id;
      else if (node.classList.length) part += "." + [...node.classList].join(".");
      parts.unshift(part);
      if (node.id) break;
    }
    return parts.join(" > ");
  };
  const report = (el, problem, detail) => problems.push({
    problem, detail, selector: describe(el),
    text: (el.textContent || el.value || "").replace(/\\s+/g, " ").trim().slice(0, 80),
  });
  if (html.scrollWidth > viewport + slack) {
    report(html, "the page scrolls sideways", `scrollWidth ${html.scrollWidth} > clientWidth ${viewport}`);
  }
  const root = document.querySelector(rootSelector);
  if (!root) return [{problem: "no element matches " + rootSelector, selector: rootSelector, text: "", detail: ""}];
  const hidden = new Set();
  for (const el of [root, ...root.querySelectorAll("*")]) {
    if (el.parentElement && hidden.has(el.parentElement)) { hidden.add(el); continue; }
    if (el.closest("template") || (el.ownerSVGElement)) continue;
    if (!el.checkVisibility({checkOpacity: false, checkVisibilityCSS: true})) { hidden.add(el); continue; }
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if ((box.width <= 1 || box.height <= 1) && style.overflow !== "visible") { hidden.add(el); continue; }
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > viewport + slack) {
      report(el, "sticks out past the right edge", `by ${Math.round(box.right - viewport)}px`);
    }
    if (box.left < -slack) report(el, "sticks out past the left edge", `by ${Math.round(-box.left)}px`);
    if (style.display === "inline" || style.display === "contents") continue;  // no box of its own to overflow
    const clips = (value) => value === "hidden" || value === "clip";
    const wide = el.scrollWidth - el.clientWidth, tall = el.scrollHeight - el.clientHeight;
    if (clips(style.overflowX) && wide > slack) report(el, "is cut off", `${wide}px of its content is hidden sideways`);
    if (clips(style.overflowY) && tall > slack) report(el, "is cut off", `${tall}px of its content is hidden below`);
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (ownText && style.overflowX === "visible" && wide > slack) {
      report(el, "has text spilling out of its box", `${wide}px wider than its box`);
    }
  }
  return problems;
}
"""


def layout_problems(page: Page, root: str = "body", *, slack: float = 1.0) -> list[dict[str, str]]:
    """Every element in `root` (and the page itself) that scrolls sideways, sticks out, or is cut off."""
    return page.evaluate(_LAYOUT_PROBLEMS, [root, slack])


def format_problems(problems: list[dict[str, str]]) -> str:
    return "\n".join(f"  {p['selector']} {p['problem']} ({p['detail']}): {p['text']!r}" for p in problems)


def assert_fits(page: Page, where: str, root: str = "body") -> None:
    """Fail with one readable line per offender; `where` names the state (and locale) checked."""
    problems = layout_problems(page, root)
    assert not problems, f"{where} does not fit {page.viewport_size}:\n{format_problems(problems)}"
