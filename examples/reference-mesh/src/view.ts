import type { EdgeStats, IdentityPair, TrafficWindow } from "./traffic.js";

// The terminal view, in plain ANSI: a screen redrawn in place when stdout is a terminal, and
// plain lines (one block per interval) when it is not (CI, a pipe, a log file).

const ESC = "\u001b[";
const color = (code: string) => (s: string, on: boolean) => (on ? `${ESC}${code}m${s}${ESC}0m` : s);
const bold = color("1");
const dim = color("2");
const red = color("31");
const green = color("32");
const yellow = color("33");
const cyan = color("36");

/** What the screen shows besides the traffic. */
export interface ViewState {
  readonly controlPlane: string;
  readonly configDir: string;
  readonly proxies: number;
  readonly scenario: string | undefined;
  readonly scenarios: readonly { readonly key: string; readonly name: string }[];
  /** Recent control-plane events, newest last. */
  readonly events: readonly string[];
  /** Workloads that exited. */
  readonly problems: readonly string[];
  readonly metricsUrl?: string;
  /** `spiffe://cluster.local/`: left out of the identities shown. */
  readonly spiffePrefix: string;
}

const ms = (v: number) => (Number.isNaN(v) ? "–" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
const pct = (part: number, total: number) => (total > 0 ? (100 * part) / total : 0);

/** Share of each reviews version in productpage → reviews (versions the servers named). */
export function reviewsShare(window: TrafficWindow): Map<string, number> {
  const edge = window.edges.find((e) => e.destination === "reviews");
  const counts = new Map<string, number>();
  for (const v of ["v1", "v2", "v3"]) counts.set(v, edge?.versions.get(v) ?? 0);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return new Map([...counts].map(([v, n]) => [v, pct(n, total)]));
}

/** `PERMISSION_DENIED 100%, UNAVAILABLE 3%` for an edge's non-OK statuses. */
export function errorSummary(edge: EdgeStats): string {
  return [...edge.statuses]
    .filter(([s]) => s !== "OK")
    .sort((a, b) => b[1] - a[1])
    .map(([s, n]) => `${s} ${pct(n, edge.requests).toFixed(0)}%`)
    .concat([...edge.flags].map(([f, n]) => `flag ${f} ${pct(n, edge.requests).toFixed(0)}%`))
    .join(", ");
}

const edgeName = (e: { source: string; destination: string }) => `${e.source} → ${e.destination}`;

/** The screen, as lines (no trailing newline), at most `width` columns each. */
export function renderScreen(window: TrafficWindow, state: ViewState, width: number, ansi = true): string[] {
  const lines: string[] = [];
  const head = (s: string) => lines.push("", bold(s, ansi));
  lines.push(
    `${bold("meshlet reference mesh", ansi)} · control plane ${state.controlPlane} · ${state.proxies} proxies connected · scenario ${cyan(state.scenario ?? "–", ansi)}`,
  );
  lines.push(dim(`config: ${state.configDir} — edit any file there, or press a scenario key`, ansi));

  head(`TRAFFIC (last ${Math.round(window.seconds)} s, reported by the clients)`);
  lines.push(
    `  ${"source → service".padEnd(30)} ${"req/s".padStart(7)} ${"errors".padStart(8)} ${"p50".padStart(9)} ${"p99".padStart(9)}`,
  );
  if (window.edges.length === 0) lines.push(dim("  (waiting for traffic)", ansi));
  for (const e of window.edges) {
    const rate = pct(e.errors, e.requests);
    const errors = `${rate.toFixed(1)}%`.padStart(8);
    lines.push(
      `  ${edgeName(e).padEnd(30)} ${e.rps.toFixed(1).padStart(7)} ${rate > 0 ? red(errors, ansi) : green(errors, ansi)} ${ms(e.p50).padStart(9)} ${ms(e.p99).padStart(9)}`,
    );
  }

  head("REVIEWS BY VERSION (productpage → reviews)");
  const share = reviewsShare(window);
  const reviews = window.edges.find((e) => e.destination === "reviews");
  if (reviews !== undefined && [...share.values()].every((p) => p === 0))
    lines.push(dim("  no reviews version answered (refused before the application: see ERRORS)", ansi));
  const barWidth = Math.max(10, Math.min(40, width - 20));
  for (const [v, p] of share) {
    const filled = Math.round((p / 100) * barWidth);
    lines.push(
      `  ${v}  ${cyan("█".repeat(filled), ansi)}${dim("░".repeat(barWidth - filled), ansi)} ${p.toFixed(0).padStart(3)}%`,
    );
  }

  head("ERRORS");
  const failing = window.edges.filter((e) => e.errors > 0 || e.flags.size > 0);
  if (failing.length === 0) lines.push(dim("  none", ansi));
  for (const e of failing) lines.push(`  ${edgeName(e).padEnd(30)} ${yellow(errorSummary(e), ansi)}`);

  head(
    `PEER IDENTITIES (mTLS: each side's certificate as the other side verified it; ${state.spiffePrefix}…)`,
  );
  if (window.identities.length === 0) lines.push(dim("  (waiting for traffic)", ansi));
  for (const i of window.identities) lines.push(`  ${identityLine(i, state.spiffePrefix)}`);

  head("CONTROL PLANE");
  for (const p of state.problems) lines.push(`  ${red(p, ansi)}`);
  if (state.events.length === 0) lines.push(dim("  (no events yet)", ansi));
  for (const e of state.events.slice(-6)) lines.push(`  ${e}`);
  if (state.metricsUrl !== undefined) lines.push(dim(`  control-plane metrics: ${state.metricsUrl}`, ansi));

  head(`SCENARIOS (a key writes scenarios/<name>.yaml to ${state.configDir}/scenario.yaml)  ·  q quits`);
  const entries = state.scenarios.map((s) => ({
    width: s.key.length + 1 + s.name.length,
    text: `${bold(s.key, ansi)} ${s.name === state.scenario ? cyan(s.name, ansi) : s.name}`,
  }));
  let line = " ";
  let used = 1;
  for (const e of entries) {
    if (used + e.width + 2 > width && used > 1) {
      lines.push(line);
      line = " ";
      used = 1;
    }
    line += ` ${e.text} `;
    used += e.width + 2;
  }
  lines.push(line);
  return lines.map((l) => truncate(l, width));
}

/**
 * `loadgen → productpage-v1   spiffe://cluster.local/ns/default/sa/loadgen → spiffe://…/sa/bookinfo-productpage (mutual_tls)`;
 * with `prefix`, principals starting with it are shown without it.
 */
export function identityLine(i: IdentityPair, prefix = ""): string {
  const short = (p: string) => (prefix !== "" && p.startsWith(prefix) ? p.slice(prefix.length) : p);
  return `${`${i.source} → ${i.destination}`.padEnd(30)} ${short(i.sourcePrincipal)} → ${short(i.destinationPrincipal)} (${i.securityPolicy})`;
}

/** One plain block for a non-terminal stdout: the reviews share, then one line per edge. */
export function renderPlain(window: TrafficWindow, elapsedSeconds: number): string[] {
  const t = `[${String(Math.round(elapsedSeconds)).padStart(4)}s]`;
  const share = [...reviewsShare(window)].map(([v, p]) => `${v} ${p.toFixed(0)}%`).join(" ");
  const lines = [`${t} reviews by version: ${share} (last ${Math.round(window.seconds)} s)`];
  for (const e of window.edges) {
    const errors = errorSummary(e);
    lines.push(
      `${t}   ${edgeName(e)}: ${e.rps.toFixed(1)} req/s, errors ${pct(e.errors, e.requests).toFixed(1)}%${errors ? ` (${errors})` : ""}, p50 ${ms(e.p50)}, p99 ${ms(e.p99)}`,
    );
  }
  return lines;
}

// Visible width: ANSI sequences take no columns.
function truncate(line: string, width: number): string {
  let visible = 0;
  let out = "";
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "\u001b") {
      const end = line.indexOf("m", i);
      if (end < 0) break;
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= width) continue;
    out += line[i];
    visible++;
  }
  return out;
}

/** Clears the screen and puts the cursor home; hides or shows the cursor. */
export const ansi = {
  home: `${ESC}H${ESC}J`,
  hideCursor: `${ESC}?25l`,
  showCursor: `${ESC}?25h`,
  clearLine: `${ESC}K`,
};
