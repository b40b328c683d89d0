import * as grpc from "@grpc/grpc-js";
import type { Product } from "./bookinfo.js";

// The traffic generator: an open loop of GetProduct calls to productpage at a fixed rate (calls
// start on schedule whether or not earlier ones finished, as users arrive), at most `maxInFlight`
// at once. Every fourth call is made as the user `jason` (header `end-user`), the user Istio's
// request-routing task sends to reviews v2.

/** Options of {@link startLoad}. */
export interface LoadOptions {
  readonly client: grpc.Client & {
    GetProduct: (
      request: { productId: number },
      metadata: grpc.Metadata,
      options: Partial<grpc.CallOptions>,
      callback: (error: grpc.ServiceError | null, response?: Product) => void,
    ) => grpc.ClientUnaryCall;
  };
  readonly rps: number;
  readonly maxInFlight?: number;
  readonly timeoutMs?: number;
}

/** Starts the loop; returns a function that stops it. */
export function startLoad(options: LoadOptions): () => void {
  const rps = Number.isFinite(options.rps) && options.rps > 0 ? options.rps : 10;
  const maxInFlight = options.maxInFlight ?? 100;
  let inFlight = 0;
  let n = 0;
  const fire = () => {
    if (inFlight >= maxInFlight) return;
    inFlight++;
    const metadata = new grpc.Metadata();
    if (n++ % 4 === 3) metadata.set("end-user", "jason");
    options.client.GetProduct(
      { productId: 0 },
      metadata,
      { deadline: Date.now() + (options.timeoutMs ?? 5000) },
      () => {
        inFlight--;
      },
    );
  };
  // Timers are coarse: fire the calls that are due since the last tick.
  const started = performance.now();
  let fired = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rps);
    // After a stall (a busy machine), skip what is more than a second late instead of bursting.
    if (due - fired > rps) fired = due - Math.ceil(rps);
    while (fired < due) {
      fired++;
      fire();
    }
  }, 20);
  return () => clearInterval(timer);
}
