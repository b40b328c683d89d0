#!/usr/bin/env node
// bench/ca-sign: how fast @meshlet/ca turns CSRs into SPIFFE X509-SVIDs.
//
//   npm run build && node bench/ca-sign/run.mjs [--seconds 3] [--concurrency 1,16,64] [--quick]
//   (or `npm run bench -- --only ca-sign`; --quick = 1s per measurement, concurrency 1,16)
//
// Prints one JSON document:
//  - caSign: CSRs signed per second through ca.sign (CSR parse + signature verify + certificate
//    assembly + CA signature + PEM encode), for ECDSA P-256 and RSA-2048 CA keys;
//  - caSignVerifyThreads: the same with CSR verification on worker threads (one per core);
//  - peculiarX509: the same work with @peculiar/x509 (the reference the issue names), when installed;
//  - grpc: end-to-end IstioCertificateService/CreateCertificate over loopback gRPC with C concurrent
//    callers (server in a child process, one HTTP/2 channel), and with verifyThreads = cores at
//    the highest concurrency (grpcVerifyThreads);
//  - opensslSpeed: `openssl speed` sign and verify rates for the same key types from this run (the
//    ceiling), pinned to each core alone and to all cores at once, so per-core and all-core figures
//    add up (allCoresOverSumOfCores ≈ 1 on a quiet machine); ratios against the per-certificate
//    ceiling (ca.sign = verify the CSR + sign + verify the leaf); load average at start and end.
import { execFile, fork } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import {
  CertificateAuthority,
  createCsr,
  generateKey,
  IstioCertificateClient,
  IstioCertificateService,
  JwtAuthenticator,
  SpiffeId,
} from "@meshlet/ca";

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const QUICK = args.includes("--quick");
const SECONDS = Number(arg("seconds", QUICK ? "1" : "3"));
const CONCURRENCY = arg("concurrency", QUICK ? "1,16" : "1,16,64")
  .split(",")
  .map(Number);
if (!(SECONDS > 0) || CONCURRENCY.some((c) => !(Number.isInteger(c) && c > 0))) {
  process.stderr.write("ca-sign: --seconds must be positive and --concurrency a list of positive integers\n");
  process.exit(2);
}
const TD = "cluster.local";
const KEY_TYPES = ["ecdsa-p256", "rsa-2048"];
const CSR_POOL = 64;

const idFor = (i) => SpiffeId.istio(TD, "bench", `sa-${i}`).toString();

/** Bench-only token verifier: the bearer token *is* the SPIFFE ID (never use this in production). */
const trustingVerifier = { verify: async (token) => ({ identities: [SpiffeId.parse(token)] }) };

async function csrPool(keyType) {
  const pool = [];
  for (let i = 0; i < CSR_POOL; i++) {
    const { privateKey } = await generateKey(keyType);
    pool.push({ csr: await createCsr({ privateKey, uris: [idFor(i)] }), id: idFor(i) });
  }
  return pool;
}

/** Runs `op(i)` from `concurrency` loops for SECONDS; returns ops/s and latency percentiles. */
async function measure(concurrency, op) {
  const latencies = [];
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const i = n++;
        const t = performance.now();
        await op(i % CSR_POOL);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))].toFixed(2));
  return { concurrency, perSecond: Math.round(latencies.length / elapsed), p50ms: pct(50), p99ms: pct(99) };
}

async function peculiarBaseline(keyType, pool) {
  let x509;
  try {
    await import("reflect-metadata");
    x509 = await import("@peculiar/x509");
  } catch {
    return undefined;
  }
  const { webcrypto } = await import("node:crypto");
  x509.cryptoProvider.set(webcrypto);
  const alg =
    keyType === "rsa-2048"
      ? {
          name: "RSASSA-PKCS1-v1_5",
          hash: "SHA-256",
          publicExponent: new Uint8Array([1, 0, 1]),
          modulusLength: 2048,
        }
      : { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const caKeys = await webcrypto.subtle.generateKey(alg, false, ["sign", "verify"]);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `O=${TD}`,
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const op = async (i) => {
    const request = new x509.Pkcs10CertificateRequest(pool[i].csr);
    if (!(await request.verify())) throw new Error("CSR did not verify");
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
        .toString("hex")
        .replace(/^[89a-f]/, "1"),
      issuer: root.subject,
      subject: "",
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      publicKey: request.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: pool[i].id }], true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.BasicConstraintsExtension(false, undefined, true),
      ],
    });
    return cert.toString("pem");
  };
  const results = [];
  for (const c of [1, Math.max(...CONCURRENCY)]) results.push(await measure(c, op));
  return results;
}

/**
 * The ceiling, measured so the figures add up: `openssl speed` pinned to each core in turn
 * (`taskset -c <i>`, one process alone), then one pinned process per core at the same time (the
 * all-core ceiling). On a quiet machine the all-core rate is the sum of the per-core rates; the
 * report gives `allCoresOverSumOfCores` so a contended run (well below 1) is visible instead of
 * producing an "all cores" figure below one core, as `-multi` did on a shared machine.
 */
async function opensslSpeed() {
  const run = promisify(execFile);
  // `-mr` lines: +F2:<n>:2048:<sign/s>:<verify/s> (RSA), +F4:<n>:256:<sign/s>:<verify/s> (ECDSA).
  const parse = (out) => {
    const rates = {};
    for (const line of out.split("\n")) {
      const rsa = /^\+F2:\d+:2048:([\d.]+):([\d.]+)/.exec(line);
      if (rsa) rates["rsa-2048"] = { sign: Number(rsa[1]), verify: Number(rsa[2]) };
      const ec = /^\+F4:\d+:256:([\d.]+):([\d.]+)/.exec(line);
      if (ec) rates["ecdsa-p256"] = { sign: Number(ec[1]), verify: Number(ec[2]) };
    }
    return rates;
  };
  const seconds = String(Math.max(1, Math.round(SECONDS)));
  const speed = async (core) => {
    const { stdout, stderr } = await run("taskset", [
      "-c",
      String(core),
      "openssl",
      "speed",
      "-seconds",
      seconds,
      "-mr",
      "rsa2048",
      "ecdsap256",
    ]);
    return parse(stdout + stderr);
  };
  const cores = cpus().length;
  const perCore = [];
  for (let core = 0; core < cores; core++) perCore.push(await speed(core));
  const together = await Promise.all(Array.from({ length: cores }, (_, core) => speed(core)));
  const version = (await run("openssl", ["version"])).stdout.trim();
  const pick = (rates, keyType, op) => Math.round(rates[keyType][op]);
  const out = {
    version,
    method: "taskset per core; all cores = one pinned process per core at once",
    perCore: {},
    allCores: {},
  };
  for (const keyType of KEY_TYPES) {
    const sum = (list, op) => list.reduce((total, rates) => total + pick(rates, keyType, op), 0);
    out.perCore[keyType] = {
      sign: perCore.map((r) => pick(r, keyType, "sign")),
      verify: perCore.map((r) => pick(r, keyType, "verify")),
    };
    out.allCores[keyType] = {
      sign: sum(together, "sign"),
      verify: sum(together, "verify"),
      sumOfCoresSign: sum(perCore, "sign"),
      sumOfCoresVerify: sum(perCore, "verify"),
      allCoresOverSumOfCores: Number((sum(together, "sign") / sum(perCore, "sign")).toFixed(3)),
    };
  }
  return out;
}

async function serveInChild() {
  const keyType = process.env.BENCH_CA_KEY;
  const verifyThreads = Number(process.env.BENCH_VERIFY_THREADS ?? "0");
  const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, keyType, verifyThreads });
  const service = new IstioCertificateService({
    ca,
    authenticators: [new JwtAuthenticator(trustingVerifier)],
  });
  const server = await service.listen({ address: "127.0.0.1:0", insecure: true }); // loopback benchmark only
  process.send({ port: server.port });
  process.on("message", async () => {
    await server.close();
    process.exit(0);
  });
}

async function grpcBench(keyType, pool, verifyThreads, concurrency) {
  const child = fork(new URL(import.meta.url).pathname, ["--serve"], {
    env: { ...process.env, BENCH_CA_KEY: keyType, BENCH_VERIFY_THREADS: String(verifyThreads) },
  });
  try {
    const { port } = await new Promise((resolve, reject) => {
      child.once("message", resolve);
      child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    });
    const client = new IstioCertificateClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const results = [];
    for (const c of concurrency) {
      results.push(
        await measure(c, async (i) => {
          const chain = await client.createCertificate({ csr: pool[i].csr, bearerToken: pool[i].id });
          if (chain.length !== 2) throw new Error("unexpected chain");
        }),
      );
    }
    client.close();
    return results;
  } finally {
    child.send("stop");
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", resolve)));
  }
}

async function main() {
  const report = {
    benchmark: "ca-sign",
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      node: process.version,
      loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
    },
    settings: { seconds: SECONDS, concurrency: CONCURRENCY, csrPool: CSR_POOL, csrKeySameAsCaKey: true },
    caSign: {},
    caSignVerifyThreads: {},
    peculiarX509: {},
    grpc: {},
    grpcVerifyThreads: {},
    opensslSpeed: undefined,
    ratios: {},
  };
  const pools = {};
  for (const keyType of KEY_TYPES) {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, keyType });
    const pool = await csrPool(keyType);
    pools[keyType] = pool;
    await measure(4, (i) => ca.sign({ csr: pool[i].csr, identities: [pool[i].id] })); // warm-up
    report.caSign[keyType] = [];
    for (const c of CONCURRENCY) {
      report.caSign[keyType].push(
        await measure(c, (i) => ca.sign({ csr: pool[i].csr, identities: [pool[i].id] })),
      );
    }
    ca.close();
    // The same with CSR verification on worker threads (verifyThreads = number of cores).
    const threaded = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      keyType,
      verifyThreads: cpus().length,
    });
    await measure(4, (i) => threaded.sign({ csr: pool[i].csr, identities: [pool[i].id] }));
    report.caSignVerifyThreads[keyType] = [];
    for (const c of CONCURRENCY.filter((c) => c > 1)) {
      report.caSignVerifyThreads[keyType].push(
        await measure(c, (i) => threaded.sign({ csr: pool[i].csr, identities: [pool[i].id] })),
      );
    }
    threaded.close();
    report.peculiarX509[keyType] = await peculiarBaseline(keyType, pool);
  }
  for (const keyType of KEY_TYPES) {
    report.grpc[keyType] = await grpcBench(keyType, pools[keyType], 0, CONCURRENCY);
    report.grpcVerifyThreads[keyType] = await grpcBench(keyType, pools[keyType], cpus().length, [
      Math.max(...CONCURRENCY),
    ]);
  }
  report.opensslSpeed = await opensslSpeed();
  for (const keyType of KEY_TYPES) {
    const best = Math.max(
      ...report.caSign[keyType].map((r) => r.perSecond),
      ...report.caSignVerifyThreads[keyType].map((r) => r.perSecond),
    );
    const bestGrpc = Math.max(
      ...report.grpc[keyType].map((r) => r.perSecond),
      ...report.grpcVerifyThreads[keyType].map((r) => r.perSecond),
    );
    const bestPeculiar = report.peculiarX509[keyType]
      ? Math.max(...report.peculiarX509[keyType].map((r) => r.perSecond))
      : undefined;
    const speed = report.opensslSpeed;
    const oneCore = speed.perCore[keyType];
    const all = speed.allCores[keyType];
    const bestCoreSign = Math.max(...oneCore.sign);
    const bestCoreVerify = Math.max(...oneCore.verify);
    // ca.sign verifies the CSR's signature, signs the leaf and verifies the leaf against its issuer
    // (the SVID profile check): one sign and two verifies of the same key type per certificate.
    const perCert = (s, v) => Math.round(1 / (1 / s + 2 / v));
    const ceilingOne = perCert(bestCoreSign, bestCoreVerify);
    const ceilingAll = perCert(all.sign, all.verify);
    report.ratios[keyType] = {
      caSignBestPerSecond: best,
      opensslSignOneCore: bestCoreSign,
      opensslSignAllCores: all.sign,
      opensslCeilingOneCore: ceilingOne,
      opensslCeilingAllCores: ceilingAll,
      caSignVsCeilingOneCore: Number((best / ceilingOne).toFixed(3)),
      caSignVsCeilingAllCores: Number((best / ceilingAll).toFixed(3)),
      caSignVsSignOnlyAllCores: Number((best / all.sign).toFixed(3)),
      grpcBestPerSecond: bestGrpc,
      grpcVsCeilingAllCores: Number((bestGrpc / ceilingAll).toFixed(3)),
      ...(bestPeculiar ? { caSignVsPeculiarX509: Number((best / bestPeculiar).toFixed(2)) } : {}),
    };
  }
  report.machine.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

if (args.includes("--serve")) await serveInChild();
else await main();
