// Navigation and notification helpers the views share (kept apart from app.js so that views do
// not import the router that imports them).

/** Navigate within the app: push a history entry, or replace the current one (no new entry,
 * e.g. when only the selected run changes). */
export function go(hash, { replace = false } = {}) {
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new Event('basinlab:navigate'));
  } else {
    location.hash = hash;
  }
}

/** A short message in the corner, announced politely to screen readers. */
export function toast(text, ms = 3500) {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), ms);
}
