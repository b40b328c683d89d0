import { describe, expect, it } from "vitest";
import { command } from "./serve.js";

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      out: (l: string) => out.push(l),
      err: (l: string) => err.push(l),
      env: {},
      signal: new AbortController().signal,
    },
  };
}

describe("meshlet serve arguments", () => {
  it("needs --config", async () => {
    const t = io();
    expect(await command.run([], t.io)).toBe(2);
    expect(t.err.join("\n")).toContain("name the config with --config");
  });

  it("refuses malformed addresses and workload names, and unknown flags", async () => {
    for (const args of [
      ["--config", ".", "--listen", "localhost"],
      ["--config", ".", "--metrics", "1.2.3.4:99999"],
      ["--config", ".", "--bootstrap-for", "just-a-pod"],
      ["--config", ".", "--frobnicate"],
      ["--config"],
    ]) {
      const t = io();
      expect(await command.run(args, t.io), args.join(" ")).toBe(2);
      expect(t.err.length).toBeGreaterThan(0);
    }
  });

  it("refuses admin flags that do not fit together", async () => {
    for (const args of [
      ["--config", ".", "--admin", "nowhere"],
      ["--config", ".", "--admin-cert", "cert.pem"],
      ["--config", ".", "--graph-metrics", "localhost:9090/metrics"],
    ]) {
      const t = io();
      expect(await command.run(args, t.io), args.join(" ")).toBe(2);
    }
  });

  it("refuses to start an admin API on a non-loopback address without TLS and a token", async () => {
    const t = io();
    expect(await command.run(["--config", ".", "--admin", "0.0.0.0:15015"], t.io)).toBe(1);
    expect(t.err.join("\n")).toContain("refusing to serve the admin API on 0.0.0.0:15015 without TLS");
  });

  it("prints its usage with --help", async () => {
    const t = io();
    expect(await command.run(["--help"], t.io)).toBe(0);
    expect(t.out.join("\n")).toContain("Usage: meshlet serve --config");
  });
});
