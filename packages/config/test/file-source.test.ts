import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filter, firstValueFrom, ReplaySubject, type Subscription } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ConfigEvent, ConfigStore, FileSource } from "../src/index.js";

// FileSource against the real filesystem (inotify through fs.watch): every change below is made
// the way editors, `kubectl cp` and Kubernetes ConfigMap volumes make it.

const ns = (name: string, extra = "") =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${extra}`;
const vs = (name: string, host: string) =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}}\nspec:\n  hosts: [${host}]\n  http: [{route: [{destination: {host: ${host}}}]}]\n`;

let dir: string;
let subscription: Subscription | undefined;
let store: ConfigStore | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-files-"));
});
afterEach(async () => {
  subscription?.unsubscribe();
  subscription = undefined;
  store?.close();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Subscribes and records every event; `next` awaits the first event (from now on) matching. */
function watchEvents(source: FileSource) {
  const events: ConfigEvent[] = [];
  const replay = new ReplaySubject<{ index: number; event: ConfigEvent }>();
  subscription = source.events$.subscribe((event) => {
    events.push(event);
    replay.next({ index: events.length - 1, event });
  });
  let cursor = 0;
  return {
    events,
    async next(predicate: (e: ConfigEvent) => boolean): Promise<ConfigEvent> {
      const from = cursor;
      const hit = await firstValueFrom(replay.pipe(filter((x) => x.index >= from && predicate(x.event))));
      cursor = hit.index + 1;
      return hit.event;
    },
  };
}

const isType =
  <T extends ConfigEvent["type"]>(type: T, id?: string) =>
  (e: ConfigEvent) =>
    e.type === type && (id === undefined || ("id" in e && e.id.endsWith(id)));

describe("FileSource", () => {
  it("loads files and directories recursively (multi-document YAML and JSON), skipping hidden and other files", async () => {
    await mkdir(join(dir, "nested", "deeper"), { recursive: true });
    await mkdir(join(dir, ".git"));
    await writeFile(join(dir, "a.yaml"), `${ns("one")}---\n${ns("two")}`);
    await writeFile(
      join(dir, "nested", "deeper", "b.json"),
      JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "three" } }),
    );
    await writeFile(join(dir, ".git", "c.yaml"), ns("hidden"));
    await writeFile(join(dir, "notes.txt"), ns("text"));
    const w = watchEvents(new FileSource({ paths: [dir], watch: false }));
    await w.next(isType("synced"));
    const adds = w.events.filter((e) => e.type === "add");
    expect(
      adds.map((e) => (e.type === "add" ? (e.object as { metadata: { name: string } }).metadata.name : "")),
    ).toEqual(["one", "two", "three"]);
    expect(adds[1]).toMatchObject({
      origin: { source: "files", file: join(dir, "a.yaml"), position: { line: 6, column: 1 } },
    });
  });

  it("emits update on an in-place edit, and nothing for a rewrite with identical content", async () => {
    const file = join(dir, "ns.yaml");
    await writeFile(file, `${ns("a")}---\n${ns("b")}`);
    const w = watchEvents(new FileSource({ paths: [file] }));
    await w.next(isType("synced"));
    await writeFile(file, `${ns("a")}---\n${ns("b", "  labels: {team: x}\n")}`);
    const update = await w.next(isType("update"));
    expect(update).toMatchObject({ id: `${file}#Namespace//b` });
    expect(w.events.filter((e) => e.type === "update")).toHaveLength(1);
  });

  it("follows atomic-rename writes (write a temp file, rename it over the original)", async () => {
    const file = join(dir, "vs.yaml");
    await writeFile(file, vs("reviews", "reviews"));
    const w = watchEvents(new FileSource({ paths: [dir] }));
    await w.next(isType("synced"));
    for (const host of ["v2", "v3"]) {
      const tmp = join(dir, `.vs.yaml.${host}.tmp`);
      await writeFile(tmp, vs("reviews", host));
      await rename(tmp, file);
      const update = await w.next(isType("update"));
      expect(update.type === "update" && (update.object as { spec: { hosts: string[] } }).spec.hosts).toEqual(
        [host],
      );
    }
  });

  it("handles renames and deletes: renamed-away files are deleted, renamed-in files added", async () => {
    await writeFile(join(dir, "a.yaml"), ns("a"));
    await writeFile(join(dir, "b.yaml"), ns("b"));
    const w = watchEvents(new FileSource({ paths: [dir] }));
    await w.next(isType("synced"));
    await rename(join(dir, "a.yaml"), join(dir, "a.yaml.disabled"));
    expect(await w.next(isType("delete"))).toMatchObject({ id: `${join(dir, "a.yaml")}#Namespace//a` });
    await rename(join(dir, "a.yaml.disabled"), join(dir, "c.yml"));
    expect(await w.next(isType("add"))).toMatchObject({ id: `${join(dir, "c.yml")}#Namespace//a` });
    await rm(join(dir, "b.yaml"));
    expect(await w.next(isType("delete"))).toMatchObject({ id: `${join(dir, "b.yaml")}#Namespace//b` });
    await mkdir(join(dir, "later"));
    await writeFile(join(dir, "later", "d.yaml"), ns("d"));
    expect(await w.next(isType("add"))).toMatchObject({ id: `${join(dir, "later", "d.yaml")}#Namespace//d` });
  });

  it("does not emit a half-written file: it keeps the last good objects until the file parses again", async () => {
    const file = join(dir, "vs.yaml");
    await writeFile(file, `${vs("a", "a")}---\n${vs("b", "b")}`);
    const w = watchEvents(new FileSource({ paths: [dir] }));
    await w.next(isType("synced"));
    // A writer that got as far as the middle of a flow sequence.
    const full = `${vs("a", "a2")}---\n${vs("b", "b2")}`;
    await writeFile(file, full.slice(0, full.indexOf("[b2") + 3));
    const problems = await w.next(isType("problems"));
    expect(problems).toMatchObject({
      scope: file,
      diagnostics: [expect.objectContaining({ code: "MC0001", file })],
    });
    expect(w.events.some((e) => e.type === "delete" || e.type === "update")).toBe(false);
    await writeFile(file, full);
    await w.next((e) => e.type === "problems" && e.diagnostics.length === 0);
    expect(w.events.filter((e) => e.type === "update")).toHaveLength(2);
    expect(w.events.some((e) => e.type === "delete")).toBe(false);
  });

  it("deletes the objects of a file that was really emptied (after a second look: truncation is how writes start)", async () => {
    const file = join(dir, "ns.yaml");
    await writeFile(file, `${ns("a")}---\n${ns("b")}`);
    const w = watchEvents(new FileSource({ paths: [dir] }));
    await w.next(isType("synced"));
    await writeFile(file, "");
    await w.next(isType("delete", "Namespace//a"));
    await w.next(isType("delete", "Namespace//b"));
    expect(w.events.filter((e) => e.type === "add")).toHaveLength(2);
  });

  it("follows a Kubernetes ConfigMap volume update (the ..data symlink swap)", async () => {
    // What the kubelet does: files are symlinks into ..data, itself a symlink to a timestamped
    // directory; an update writes a new directory and atomically renames a new ..data link over it.
    await mkdir(join(dir, "..2024_01"));
    await writeFile(join(dir, "..2024_01", "mesh.yaml"), vs("reviews", "v1"));
    await symlink("..2024_01", join(dir, "..data"));
    await symlink(join("..data", "mesh.yaml"), join(dir, "mesh.yaml"));
    const w = watchEvents(new FileSource({ paths: [dir] }));
    await w.next(isType("synced"));
    expect(w.events.filter((e) => e.type === "add")).toHaveLength(1);
    await mkdir(join(dir, "..2024_02"));
    await writeFile(join(dir, "..2024_02", "mesh.yaml"), vs("reviews", "v2"));
    await symlink("..2024_02", join(dir, "..data_tmp"));
    await rename(join(dir, "..data_tmp"), join(dir, "..data"));
    await rm(join(dir, "..2024_01"), { recursive: true });
    const update = await w.next(isType("update"));
    expect(update.type === "update" && (update.object as { spec: { hosts: string[] } }).spec.hosts).toEqual([
      "v2",
    ]);
  });

  it("reports a missing path and picks the file up when it appears", async () => {
    const file = join(dir, "later.yaml");
    const w = watchEvents(new FileSource({ paths: [file] }));
    const missing = await w.next(isType("problems"));
    expect(missing).toMatchObject({
      diagnostics: [
        expect.objectContaining({ code: "MC0006", message: expect.stringContaining("does not exist") }),
      ],
    });
    await w.next(isType("synced"));
    await writeFile(file, ns("late"));
    expect(await w.next(isType("add"))).toMatchObject({ id: `${file}#Namespace//late` });
  });
});

describe("ConfigStore over FileSource", () => {
  it("publishes a new snapshot after an edit, keeps the last good version on a bad edit, and names file:line", async () => {
    const file = join(dir, "mesh.yaml");
    await writeFile(file, vs("reviews", "reviews"));
    store = new ConfigStore({ sources: [new FileSource({ paths: [dir] })], debounceMs: 20 }).start();
    const first = await store.synced();
    expect(first.get("VirtualService", "default", "reviews")?.spec.hosts).toEqual(["reviews"]);

    await writeFile(
      file,
      vs("reviews", "reviews-v2").replace("  hosts: [reviews-v2]", "  hosts: [reviews-v2]\n  gateways: 3"),
    );
    const status = await firstValueFrom(store.status$.pipe(filter((s) => s.errors.length > 0)));
    expect(status.errors[0]).toMatchObject({
      code: "MC0004",
      file,
      line: 6,
      column: 3,
      path: "spec.gateways",
      resource: "VirtualService/default/reviews",
    });
    expect(store.current()?.get("VirtualService", "default", "reviews")?.spec.hosts).toEqual(["reviews"]);

    await writeFile(file, vs("reviews", "reviews-v3"));
    const fixed = await store.waitFor(
      (s) => s.get("VirtualService", "default", "reviews")?.spec.hosts?.[0] === "reviews-v3",
    );
    expect(fixed.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });
});
