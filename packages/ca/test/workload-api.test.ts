import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Client,
  type ClientReadableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  SpiffeWorkloadAPI,
  X509BundlesRequestSchema,
  type X509BundlesResponse,
  X509SVIDRequestSchema,
  type X509SVIDResponse,
} from "@meshlet/api/spiffe/workload/workload_pb";
import { map, VirtualTimeScheduler } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateAuthority, WorkloadApiServer } from "../src/index.js";
import { startWorkloadApi } from "./helpers.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/shop/sa/cart`;

/** Splits concatenated DER certificates. */
function splitDer(bytes: Uint8Array): X509Certificate[] {
  const out: X509Certificate[] = [];
  let offset = 0;
  const buf = Buffer.from(bytes);
  while (offset < buf.length) {
    const lenByte = buf[offset + 1] as number;
    const n = lenByte & 0x80 ? lenByte & 0x7f : 0;
    let len = n ? 0 : lenByte;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    const end = offset + 2 + n + len;
    out.push(new X509Certificate(buf.subarray(offset, end)));
    offset = end;
  }
  return out;
}

/** Reads messages from a server stream, one awaited at a time. */
function reader<T>(stream: ClientReadableStream<T>) {
  const queue: T[] = [];
  const waiters: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  let failure: unknown;
  stream.on("data", (m: T) => {
    const w = waiters.shift();
    if (w) w.resolve(m);
    else queue.push(m);
  });
  stream.on("error", (e) => {
    failure = e;
    for (const w of waiters.splice(0)) w.reject(e);
  });
  return {
    next(): Promise<T> {
      if (queue.length > 0) return Promise.resolve(queue.shift() as T);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
  };
}

describe("SPIFFE Workload API over a Unix socket", () => {
  let ca: CertificateAuthority;
  let client: Client;
  let fixture: Awaited<ReturnType<typeof startWorkloadApi>>;
  let tmp: { dir: string };

  beforeAll(async () => {
    fixture = await startWorkloadApi(TD, ID, { rotation: { ttl: "1h" } });
    ({ ca, client } = fixture);
    tmp = { dir: fixture.dir };
  });

  afterAll(() => fixture?.close());

  function call<Res>(method: "fetchX509SVID" | "fetchX509Bundles", header = true): ClientReadableStream<Res> {
    const desc = SpiffeWorkloadAPI.method[method];
    const metadata = new Metadata();
    if (header) metadata.set("workload.spiffe.io", "true");
    const input =
      method === "fetchX509SVID" ? create(X509SVIDRequestSchema) : create(X509BundlesRequestSchema);
    return client.makeServerStreamRequest(
      `/${SpiffeWorkloadAPI.typeName}/${desc.name}`,
      () => Buffer.from(toBinary(desc.input as typeof X509SVIDRequestSchema, input as never)),
      (bytes: Buffer) => fromBinary(desc.output, bytes) as Res,
      input,
      metadata,
    );
  }

  it("FetchX509SVID streams the SVID, its key and the bundle, then the full state again after a root change", async () => {
    const stream = call<X509SVIDResponse>("fetchX509SVID");
    const messages = reader(stream);
    const first = await messages.next();
    expect(first.svids).toHaveLength(1);
    const svid = first.svids[0]!;
    expect(svid.spiffeId).toBe(ID);
    const [leaf, ...rest] = splitDer(svid.x509Svid);
    expect(rest).toHaveLength(0);
    expect(leaf!.subjectAltName).toBe(`URI:${ID}`);
    expect(
      leaf!.checkPrivateKey(
        createPrivateKey({ key: Buffer.from(svid.x509SvidKey), format: "der", type: "pkcs8" }),
      ),
    ).toBe(true);
    const roots = splitDer(svid.bundle);
    expect(roots).toHaveLength(1);
    expect(leaf!.verify(roots[0]!.publicKey)).toBe(true);

    await ca.rotateRoot({ mode: "new-key", overlap: "1h" });
    const second = await messages.next();
    // Full state per message: the same SVID with the bundle that now has both roots.
    expect(second.svids).toHaveLength(1);
    expect(splitDer(second.svids[0]!.bundle)).toHaveLength(2);
    stream.cancel();
  });

  it("FetchX509Bundles streams the trust domain's bundle", async () => {
    const stream = call<X509BundlesResponse>("fetchX509Bundles");
    const first = await reader(stream).next();
    // SPIRE keys bundles by trust domain ID (spire agent workload handler: TrustDomain().IDString()).
    expect(Object.keys(first.bundles)).toEqual([`spiffe://${TD}`]);
    expect(splitDer(first.bundles[`spiffe://${TD}`]!).map((c) => c.toString())).toEqual(
      ca.trustBundle.roots.map((r) => new X509Certificate(r).toString()),
    );
    stream.cancel();
  });

  it.each(["fetchX509SVID", "fetchX509Bundles"] as const)(
    "%s without the workload.spiffe.io header gets INVALID_ARGUMENT",
    async (method) => {
      const error = (await reader(call(method, false))
        .next()
        .catch((e: unknown) => e)) as ServiceError;
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toContain("security header missing");
    },
  );

  it("pushes the full state again when the SVID rotates at half its lifetime, and sends federated bundles", async () => {
    const scheduler = new VirtualTimeScheduler();
    const base = Date.now();
    const clock = () => base + scheduler.now();
    const rotatingCa = await CertificateAuthority.selfSigned({ trustDomain: TD, clock, scheduler });
    const partner = await CertificateAuthority.selfSigned({ trustDomain: "partner.org" });
    const api = new WorkloadApiServer({
      ca: rotatingCa,
      identity: ID,
      rotation: { ttl: "1h", scheduler, clock, random: () => 0 },
      federatedBundles$: partner.trustBundle$.pipe(map((b) => [b])),
    });
    const socket = join(tmp.dir, "rotating.sock");
    const rotatingServer = await api.listen({ path: socket });
    const rotatingClient = new Client(`unix:${socket}`, credentials.createInsecure());
    try {
      const desc = SpiffeWorkloadAPI.method.fetchX509SVID;
      const metadata = new Metadata();
      metadata.set("workload.spiffe.io", "true");
      const stream = rotatingClient.makeServerStreamRequest(
        `/${SpiffeWorkloadAPI.typeName}/${desc.name}`,
        () => Buffer.from(toBinary(X509SVIDRequestSchema, create(X509SVIDRequestSchema))),
        (bytes: Buffer) => fromBinary(desc.output, bytes),
        create(X509SVIDRequestSchema),
        metadata,
      );
      const messages = reader(stream);
      const first = await messages.next();
      expect(Object.keys(first.federatedBundles)).toEqual(["spiffe://partner.org"]);
      expect(splitDer(first.federatedBundles["spiffe://partner.org"]!)[0]!.toString()).toBe(
        new X509Certificate(partner.trustBundle.roots[0]!).toString(),
      );
      scheduler.flush(); // the renewal timer: half of the 1h SVID's lifetime, in virtual time
      const second = await messages.next();
      const [before] = splitDer(first.svids[0]!.x509Svid);
      const [after] = splitDer(second.svids[0]!.x509Svid);
      expect(after!.serialNumber).not.toBe(before!.serialNumber);
      expect(second.svids[0]!.spiffeId).toBe(ID);
      expect(splitDer(second.svids[0]!.bundle)).toHaveLength(1);
      expect(Object.keys(second.federatedBundles)).toEqual(["spiffe://partner.org"]);
      stream.cancel();
    } finally {
      rotatingClient.close();
      await rotatingServer.close();
      rotatingCa.close();
      partner.close();
    }
  });
});
