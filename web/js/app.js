// The dashboard's entry point: a hash router (#/, #/new, #/experiments/{id}, #/compare,
// #/datasets/{id}) that mounts one view at a time into <main>. A view is
// mount(root, route) → {update?(route), destroy?()}: update() lets a view react to a change of
// its own query (e.g. the selected run) without refetching everything; destroy() closes its
// event stream, timers and charts. Hash routes need no server-side fallback, so the server only
// serves files.
import { mountList } from './view_list.js';
import { mountExperiment } from './view_experiment.js';
import { mountCompare } from './view_compare.js';
import { mountDataset } from './view_dataset.js';
import { mountSubmit } from './view_submit.js';
import { h, setChildren } from './util.js';

const routes = [
  { name: 'list', re: /^\/?$/, mount: mountList, title: 'Experiments' },
  { name: 'new', re: /^\/new$/, mount: mountSubmit, title: 'New experiment' },
  { name: 'experiment', re: /^\/experiments\/([^/]+)$/, mount: mountExperiment, title: 'Experiment' },
  { name: 'compare', re: /^\/compare$/, mount: mountCompare, title: 'Compare runs' },
  { name: 'dataset', re: /^\/datasets\/([^/]+)$/, mount: mountDataset, title: 'Dataset' },
];

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const query = Object.fromEntries(new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1)));
  for (const r of routes) {
    const m = path.match(r.re);
    if (m) return { ...r, id: m[1] ? decodeURIComponent(m[1]) : null, query, path };
  }
  return { name: 'notfound', path, query };
}

let current = null; // {route, view}
const main = () => document.getElementById('main');

function render() {
  const route = parse();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === route.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (current && current.route.name === route.name && current.route.id === route.id && current.view && current.view.update) {
    current.route = route;
    current.view.update(route);
    return;
  }
  if (current && current.view && current.view.destroy) current.view.destroy();
  const root = main();
  setChildren(root);
  document.title = `${route.title || 'Not found'} · basinlab`;
  if (route.name === 'notfound') {
    setChildren(root, h('h1', {}, 'Not found'), h('p', {}, 'No view at ', h('code', {}, route.path), '. ', h('a', { href: '#/' }, 'Back to the experiments.')));
    current = { route, view: null };
    return;
  }
  let view = null;
  try {
    view = route.mount(root, route) || null;
  } catch (e) {
    setChildren(root, h('div', { class: 'error-box', role: 'alert' }, `This view failed: ${e.message}`));
  }
  current = { route, view };
  // move focus to the new content for keyboard and screen-reader users, without scrolling jumps
  if (document.activeElement && document.activeElement.closest && document.activeElement.closest('nav')) root.focus({ preventScroll: true });
}

window.addEventListener('hashchange', render);
window.addEventListener('basinlab:navigate', render);
if (document.readyState === 'loading') window.addEventListener('DOMContentLoaded', render);
else render();
