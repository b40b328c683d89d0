import { readdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

// The ready-made YAML variants under scenarios/: applying one writes it to config/scenario.yaml,
// the file of the watched config directory that holds "the current experiment". The control
// plane notices the change like any edit. Each file starts with `# <title>` and a few comment
// lines that say what to watch.

/** One scenario file. */
export interface Scenario {
  /** File name without `.yaml`: `reviews-50-v3`. */
  readonly name: string;
  readonly file: string;
  /** The first comment line. */
  readonly title: string;
  /** The other leading comment lines. */
  readonly description: string;
}

/** The file of the config directory scenarios are written to. */
export const SCENARIO_FILE = "scenario.yaml";

/** The tour the README walks, in order; other files come after, by name. */
export const SCENARIO_ORDER = [
  "default",
  "reviews-v1",
  "reviews-50-v3",
  "reviews-v3",
  "reviews-jason-v2",
  "fault-ratings",
  "delay-ratings",
  "deny-reviews",
  "ratelimit-productpage",
];

/** Every scenario of `dir`, in {@link SCENARIO_ORDER}, then by name. */
export async function listScenarios(dir: string): Promise<Scenario[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort();
  const scenarios: Scenario[] = [];
  for (const f of files) {
    const file = join(dir, f);
    const comments: string[] = [];
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      if (!line.startsWith("#")) break;
      comments.push(line.replace(/^#\s?/, ""));
    }
    scenarios.push({
      name: basename(f, ".yaml"),
      file,
      title: comments[0] ?? basename(f, ".yaml"),
      description: comments.slice(1).join("\n").trim(),
    });
  }
  const rank = (s: Scenario) => {
    const i = SCENARIO_ORDER.indexOf(s.name);
    return i < 0 ? SCENARIO_ORDER.length : i;
  };
  return scenarios.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** Writes the scenario to `<configDir>/scenario.yaml` (atomically: the watcher never sees half a file). */
export async function applyScenario(scenario: Scenario, configDir: string): Promise<void> {
  const target = join(configDir, SCENARIO_FILE);
  const tmp = join(configDir, `.${SCENARIO_FILE}.tmp-${process.pid}`);
  await writeFile(tmp, await readFile(scenario.file, "utf8"));
  await rename(tmp, target);
}

/** The scenario whose content the config directory's scenario file has, if any. */
export async function currentScenario(
  scenarios: readonly Scenario[],
  configDir: string,
): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(configDir, SCENARIO_FILE), "utf8");
  } catch {
    return undefined;
  }
  for (const s of scenarios) if ((await readFile(s.file, "utf8")) === text) return s.name;
  return "edited";
}
