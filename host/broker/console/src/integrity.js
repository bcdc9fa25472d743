// The integrity the page pins for the files its scripts fetch themselves
// (the end-to-end module, the translations). The broker serves index.html
// with `<meta name="lifeline-integrity" content="PATH sha256-… PATH
// sha256-…">` beside the integrity attributes of its scripts, styles and
// module preloads (host/broker/src/console/integrity.rs); `fetch` with that
// integrity refuses any other bytes.

/** The integrity the page pins for `path` (under assets/): `sha256-…`, or undefined. */
export function pinnedIntegrity(path, doc = globalThis.document) {
  const meta = doc?.querySelector?.('meta[name="lifeline-integrity"]');
  if (!meta) return undefined;
  const parts = String(meta.getAttribute('content') || '').trim().split(/\s+/);
  for (let i = 0; i + 1 < parts.length; i += 2) {
    if (parts[i] === path) return parts[i + 1];
  }
  return undefined;
}
