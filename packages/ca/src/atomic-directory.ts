import { randomBytes } from "node:crypto";
import { lstat, mkdir, readlink, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * A directory of files replaced all at once, laid out as the kubelet's AtomicWriter lays out
 * Secret and ConfigMap volumes: each version's files live in a hidden `..<timestamp>.<random>`
 * directory, `..data` is a symlink to the current one, and every visible file is a symlink
 * `<name> -> ..data/<name>`. Swapping `..data` (one rename) replaces every file at the same
 * instant, so no reader and no crash ever sees a new key beside an old certificate. Readers that
 * follow symlinks (istiod, `fromIstioCaCerts`) see plain files; {@link currentVersion} gives one
 * consistent view for reading several files.
 */
export const DATA_LINK = "..data";

/** One file of a version: its name, content and mode. */
export interface VersionFile {
  readonly name: string;
  readonly content: string;
  readonly mode: number;
}

const isErrno = (error: unknown, code: string): boolean => (error as NodeJS.ErrnoException).code === code;

/**
 * The directory to read a consistent set of files from: the version `..data` points to now, or
 * `dir` itself when it has no `..data` (plain files). A version may be removed after a later
 * swap; read again from a fresh `currentVersion` on ENOENT.
 */
export async function currentVersion(dir: string): Promise<string> {
  try {
    return await realpath(join(dir, DATA_LINK));
  } catch (error) {
    if (isErrno(error, "ENOENT")) return dir;
    throw error;
  }
}

/** Whether `dir` has a `..data` link. */
async function hasDataLink(dir: string): Promise<boolean> {
  try {
    await lstat(join(dir, DATA_LINK));
    return true;
  } catch (error) {
    if (isErrno(error, "ENOENT")) return false;
    throw error;
  }
}

const unique = () => `${new Date().toISOString().replace(/[-:.TZ]/g, "_")}${randomBytes(6).toString("hex")}`;

/** Writes a new hidden version directory holding `files`; returns its name. */
async function writeVersion(dir: string, files: readonly VersionFile[]): Promise<string> {
  const name = `..${unique()}`;
  const path = join(dir, name);
  await mkdir(path, { mode: 0o755 });
  try {
    for (const file of files)
      await writeFile(join(path, file.name), file.content, { mode: file.mode, flag: "wx" });
  } catch (error) {
    await rm(path, { recursive: true, force: true });
    throw error;
  }
  return name;
}

/** Makes each visible name a symlink into `..data` (replacing a plain file atomically). */
async function linkFiles(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const target = join(DATA_LINK, name);
    try {
      if ((await readlink(join(dir, name))) === target) continue;
    } catch (error) {
      if (!isErrno(error, "ENOENT") && !isErrno(error, "EINVAL")) throw error;
    }
    const temp = join(dir, `.${name}.${unique()}`);
    await symlink(target, temp);
    try {
      await rename(temp, join(dir, name));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}

/**
 * Creates the first version of `dir` only if it has none yet: resolves `true` when these files
 * were stored, `false` when another writer stored a version first (then read theirs).
 */
export async function createVersion(dir: string, files: readonly VersionFile[]): Promise<boolean> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const name = await writeVersion(dir, files);
  try {
    // symlink() fails with EEXIST when `..data` exists: the first writer wins.
    await symlink(name, join(dir, DATA_LINK));
  } catch (error) {
    await rm(join(dir, name), { recursive: true, force: true });
    if (isErrno(error, "EEXIST")) return false;
    throw error;
  }
  await linkFiles(
    dir,
    files.map((f) => f.name),
  );
  return true;
}

/**
 * Replaces every file of `dir` at once with `files`. A directory of plain files (an older
 * layout, an operator's `cacerts`) is first turned into the symlinked layout with its current
 * content (`current`), which readers see unchanged. Everything that can fail happens before the
 * swap: a failed replace leaves the previous version whole.
 */
export async function replaceVersion(
  dir: string,
  files: readonly VersionFile[],
  current: () => Promise<readonly VersionFile[]>,
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!(await hasDataLink(dir))) {
    const existing = await current();
    if (existing.length > 0) {
      const first = await writeVersion(dir, existing);
      await symlink(first, join(dir, DATA_LINK)).catch(async (error: unknown) => {
        await rm(join(dir, first), { recursive: true, force: true });
        if (!isErrno(error, "EEXIST")) throw error;
      });
    }
  }
  const names = files.map((f) => f.name);
  if (await hasDataLink(dir)) await linkFiles(dir, names);
  const previous = await readlink(join(dir, DATA_LINK)).catch(() => undefined);
  const name = await writeVersion(dir, files);
  const temp = join(dir, `${DATA_LINK}_tmp.${unique()}`);
  try {
    await symlink(name, temp);
    await rename(temp, join(dir, DATA_LINK));
  } catch (error) {
    await rm(temp, { force: true });
    await rm(join(dir, name), { recursive: true, force: true });
    throw error;
  }
  await linkFiles(dir, names);
  if (previous && previous !== name && previous.startsWith("..")) {
    await rm(join(dir, previous), { recursive: true, force: true });
  }
}
