import { type FSWatcher, watch } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, extname, join, resolve } from "node:path";
import { Observable, type Subscriber } from "rxjs";
import { ConfigError } from "../config-error.js";
import { DiagnosticCode } from "../diagnostic-code.js";
import { parseDocuments } from "../parse-documents.js";
import { type ConfigEvent, type ConfigSource, objectId } from "./config-source.js";

/** Options for {@link FileSource}. */
export interface FileSourceOptions {
  /** Files and directories (walked recursively) of YAML/JSON, multi-document allowed. */
  readonly paths: readonly string[];
  /** Defaults to `files`. */
  readonly name?: string;
  /** Watch for changes after the initial load (default true). `false` loads once, then completes. */
  readonly watch?: boolean;
  /**
   * A changed file is read only after it has been quiet this long (default 50 ms), so a file being
   * written in several chunks is read once, complete.
   */
  readonly settleMs?: number;
  /** File extensions read in directories (default `.yaml`, `.yml`, `.json`). Files named explicitly are always read. */
  readonly extensions?: readonly string[];
}

interface FileState {
  signature: string;
  /** id → JSON of the object last emitted, to emit `update` only on real change. */
  entries: Map<string, string>;
  hasProblems: boolean;
}

/**
 * YAML/JSON files and directories as a config source, watched.
 *
 * Watching is per directory, never per file: editors and Kubernetes ConfigMap mounts replace files
 * by writing a temporary file and renaming it over the old one (ConfigMaps swap a `..data` symlink),
 * which a watch on the old inode would miss. Any event in a directory re-scans it and compares file
 * signatures (inode, size, mtime), so renames, deletes and atomic writes all converge to what is on
 * disk. A file is read after it has been quiet for `settleMs`, re-read if it changed while being
 * read, and a file that does not parse keeps its last good objects (with a `MC0001` problem) instead
 * of emitting the half that parses. Hidden entries (`.git`, `..data`, editor swap files) are skipped.
 */
export class FileSource implements ConfigSource {
  readonly name: string;
  readonly events$: Observable<ConfigEvent>;
  readonly #options: FileSourceOptions;

  /** `new FileSource("./mesh")` and `new FileSource(["a.yaml", "dir"])` are shorthands for `{ paths }`. */
  constructor(options: FileSourceOptions | string | readonly string[]) {
    const opts: FileSourceOptions =
      typeof options === "string" ? { paths: [options] } : isPathList(options) ? { paths: options } : options;
    if (opts.paths.length === 0)
      throw new ConfigError("INVALID_ARGUMENT", "FileSource needs at least one file or directory");
    this.name = opts.name ?? "files";
    this.#options = opts;
    this.events$ = new Observable<ConfigEvent>((subscriber) => {
      const run = new FileWatchRun(this.name, this.#options, subscriber);
      void run.start();
      return () => run.stop();
    });
  }
}

function isPathList(value: FileSourceOptions | readonly string[]): value is readonly string[] {
  return Array.isArray(value);
}

class FileWatchRun {
  readonly #files = new Map<string, FileState>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Explicitly named files, watched through their directory. */
  readonly #explicit = new Set<string>();
  /** Directories walked recursively (roots and their subdirectories). */
  readonly #dirs = new Set<string>();
  readonly #extensions: Set<string>;
  /** Files found empty once; emptied for real if still empty on the next look. */
  readonly #emptySeen = new Set<string>();
  /** Named paths that did not exist (reported as a problem until they appear). */
  readonly #missing = new Set<string>();
  #stopped = false;
  #queue: Promise<void> = Promise.resolve();

  constructor(
    readonly source: string,
    readonly options: FileSourceOptions,
    readonly out: Subscriber<ConfigEvent>,
  ) {
    this.#extensions = new Set(options.extensions ?? [".yaml", ".yml", ".json"]);
  }

  async start(): Promise<void> {
    try {
      for (const p of this.options.paths) {
        const abs = resolve(p);
        const st = await stat(abs).catch(() => undefined);
        if (st === undefined) {
          this.#missing.add(abs);
          this.#problem(abs, `path ${p} does not exist`);
          if (this.options.watch !== false) {
            this.#explicit.add(abs);
            this.#watchDir(dirname(abs));
          }
          continue;
        }
        if (st.isDirectory()) await this.#addDir(abs);
        else {
          this.#explicit.add(abs);
          if (this.options.watch !== false) this.#watchDir(dirname(abs));
          await this.#loadFile(abs);
        }
      }
      if (this.#stopped) return;
      this.out.next({ type: "synced" });
      if (this.options.watch === false) this.out.complete();
    } catch (error) {
      this.out.error(error);
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const w of this.#watchers.values()) w.close();
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#watchers.clear();
    this.#timers.clear();
  }

  #problem(scope: string, message: string): void {
    this.out.next({
      type: "problems",
      scope,
      diagnostics: [
        { severity: "error", code: DiagnosticCode.SourceError, message, source: this.source, file: scope },
      ],
    });
  }

  #isConfigFile(name: string): boolean {
    return !name.startsWith(".") && this.#extensions.has(extname(name).toLowerCase());
  }

  async #addDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir) || this.#stopped) return;
    this.#dirs.add(dir);
    if (this.options.watch !== false) this.#watchDir(dir);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".")) continue;
      const full = join(dir, e.name);
      const isDir =
        e.isDirectory() ||
        (e.isSymbolicLink() && (await stat(full).catch(() => undefined))?.isDirectory() === true);
      if (isDir) await this.#addDir(full);
      else if (this.#isConfigFile(e.name)) await this.#loadFile(full);
    }
  }

  #watchDir(dir: string): void {
    if (this.#watchers.has(dir) || this.#stopped) return;
    try {
      const w = watch(dir, { persistent: false }, () => this.#schedule(dir));
      w.on("error", () => {
        // The directory itself went away: rescan its parent's view of it.
        w.close();
        this.#watchers.delete(dir);
        this.#schedule(dir);
      });
      this.#watchers.set(dir, w);
    } catch {
      // Directory vanished between listing and watching; the parent's watcher reports it.
    }
  }

  #schedule(dir: string): void {
    if (this.#stopped) return;
    const existing = this.#timers.get(dir);
    if (existing !== undefined) clearTimeout(existing);
    this.#timers.set(
      dir,
      setTimeout(() => {
        this.#timers.delete(dir);
        // Rescans run one at a time so events for one file are emitted in order.
        this.#queue = this.#queue.then(() => this.#rescan(dir)).catch((error) => this.out.error(error));
      }, this.options.settleMs ?? 50),
    );
  }

  async #rescan(dir: string): Promise<void> {
    if (this.#stopped) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
    const present = new Set<string>();
    if (entries !== undefined) {
      for (const e of entries) {
        const full = join(dir, e.name);
        if (this.#dirs.has(dir) && !e.name.startsWith(".")) {
          const isDir =
            e.isDirectory() ||
            (e.isSymbolicLink() && (await stat(full).catch(() => undefined))?.isDirectory() === true);
          if (isDir) {
            if (!this.#dirs.has(full)) await this.#addDir(full);
            present.add(full);
            continue;
          }
          if (this.#isConfigFile(e.name)) present.add(full);
        }
        if (this.#explicit.has(full)) present.add(full);
      }
    }
    // Files known in this directory that are gone (deleted or renamed away).
    for (const file of [...this.#files.keys()]) {
      if (dirname(file) === dir && !present.has(file)) this.#removeFile(file);
    }
    // Subdirectories that are gone.
    for (const sub of [...this.#dirs]) {
      if (dirname(sub) === dir && !present.has(sub)) this.#removeDir(sub);
    }
    for (const path of [...present].sort()) {
      if (this.#missing.delete(path)) this.out.next({ type: "problems", scope: path, diagnostics: [] });
      if (this.#dirs.has(path)) continue;
      const st = await stat(path).catch(() => undefined);
      if (st?.isDirectory() === true) await this.#addDir(path);
      else await this.#loadFile(path);
    }
  }

  #removeDir(dir: string): void {
    this.#dirs.delete(dir);
    this.#watchers.get(dir)?.close();
    this.#watchers.delete(dir);
    for (const file of [...this.#files.keys()]) if (file.startsWith(`${dir}/`)) this.#removeFile(file);
    for (const sub of [...this.#dirs]) if (sub.startsWith(`${dir}/`)) this.#removeDir(sub);
  }

  #removeFile(file: string): void {
    const state = this.#files.get(file);
    if (state === undefined) return;
    this.#files.delete(file);
    for (const id of state.entries.keys()) this.out.next({ type: "delete", id });
    if (state.hasProblems) this.out.next({ type: "problems", scope: file, diagnostics: [] });
  }

  async #loadFile(file: string): Promise<void> {
    if (this.#stopped) return;
    const before = await stat(file).catch(() => undefined);
    if (before === undefined || !before.isFile()) {
      this.#removeFile(file);
      return;
    }
    const signature = `${before.ino}:${before.size}:${before.mtimeMs}:${before.ctimeMs}`;
    const state = this.#files.get(file);
    if (state !== undefined && state.signature === signature) return;
    const text = await readFile(file, "utf8").catch(() => undefined);
    const after = await stat(file).catch(() => undefined);
    if (text === undefined || after === undefined) {
      this.#removeFile(file);
      return;
    }
    if (`${after.ino}:${after.size}:${after.mtimeMs}:${after.ctimeMs}` !== signature) {
      // Still being written: read it again once it is quiet.
      this.#schedule(dirname(file));
      return;
    }
    if (text.trim() === "" && state !== undefined && state.entries.size > 0 && !this.#emptySeen.has(file)) {
      // Writers truncate, then write: an empty file that had objects is most likely mid-write.
      // Look again after another quiet period; if it is still empty, it really was emptied.
      this.#emptySeen.add(file);
      this.#schedule(dirname(file));
      return;
    }
    this.#emptySeen.delete(file);
    const parsed = parseDocuments(text, { source: this.source, file });
    const next: FileState = { signature, entries: new Map(), hasProblems: parsed.diagnostics.length > 0 };
    if (parsed.diagnostics.length > 0) {
      // Keep the last good objects of this file: a syntax error is most often a file mid-edit.
      next.entries = state?.entries ?? new Map();
      this.#files.set(file, next);
      this.out.next({ type: "problems", scope: file, diagnostics: parsed.diagnostics });
      return;
    }
    for (const doc of parsed.documents) {
      let id = `${file}#${objectId(doc.object) ?? doc.index}`;
      if (next.entries.has(id)) id = `${id}#${doc.index}`;
      const json = JSON.stringify(doc.object);
      next.entries.set(id, json);
      const previous = state?.entries.get(id);
      if (previous === undefined) this.out.next({ type: "add", id, object: doc.object, origin: doc.origin });
      else if (previous !== json)
        this.out.next({ type: "update", id, object: doc.object, origin: doc.origin });
    }
    for (const id of state?.entries.keys() ?? []) {
      if (!next.entries.has(id)) this.out.next({ type: "delete", id });
    }
    this.#files.set(file, next);
    if (state?.hasProblems === true) this.out.next({ type: "problems", scope: file, diagnostics: [] });
  }
}
