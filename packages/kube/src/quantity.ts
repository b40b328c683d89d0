import { KubeError } from "./kube-error.js";

/**
 * A Kubernetes resource quantity (`100m`, `1.5Gi`, `4000m`), parsed exactly: the amount in
 * nano-units as a bigint, and the format its suffix chose. Kubernetes stores quantities in a
 * canonical form (apimachinery `resource.Quantity`): `4000m` becomes `4`, `1.5` becomes `1500m`,
 * `1536Mi` stays `1536Mi`. The injector writes quantities that way, as the API server would.
 */
export interface Quantity {
  /** The amount in units of 10⁻⁹ (rounded up, as Kubernetes rounds sub-nano amounts). */
  readonly nanos: bigint;
  readonly format: "DecimalSI" | "BinarySI" | "DecimalExponent";
}

const DECIMAL_SUFFIXES: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIXES: Readonly<Record<string, number>> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const QUANTITY = /^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** Parses a quantity string; throws `INVALID_VALUE` naming `what` when it is not one. */
export function parseQuantity(text: string, what = "quantity"): Quantity {
  const match = QUANTITY.exec(text.trim());
  if (match === null) {
    throw new KubeError(
      "INVALID_VALUE",
      `${what}: "${text}" is not a Kubernetes quantity (examples: 100m, 2, 128Mi, 1Gi)`,
    );
  }
  const [, sign = "", number = "", suffix = ""] = match;
  const [whole = "", fraction = ""] = number.split(".");
  const mantissa = BigInt(`${whole}${fraction}` || "0");
  const places = fraction.length;
  let nanos: bigint;
  let format: Quantity["format"];
  if (suffix in BINARY_SUFFIXES) {
    format = "BinarySI";
    nanos = scale(mantissa * 1024n ** BigInt(BINARY_SUFFIXES[suffix] as number), 9 - places);
  } else if (/^[eE]/.test(suffix)) {
    format = "DecimalExponent";
    nanos = scale(mantissa, Number(suffix.slice(1)) + 9 - places);
  } else {
    format = "DecimalSI";
    nanos = scale(mantissa, (DECIMAL_SUFFIXES[suffix] as number) + 9 - places);
  }
  return { nanos: sign === "-" ? -nanos : nanos, format };
}

/** `value × 10^exponent`, rounded up when the exponent is negative. */
function scale(value: bigint, exponent: number): bigint {
  if (exponent >= 0) return value * 10n ** BigInt(exponent);
  const divisor = 10n ** BigInt(-exponent);
  return (value + divisor - 1n) / divisor;
}

/** The canonical string Kubernetes stores for `text` (`4000m` → `4`, `0.5` → `500m`, `1024Mi` → `1Gi`). */
export function canonicalQuantity(text: string, what?: string): string {
  const q = parseQuantity(text, what);
  const negative = q.nanos < 0n;
  const nanos = negative ? -q.nanos : q.nanos;
  const prefix = negative ? "-" : "";
  if (nanos === 0n) return "0";
  if (q.format === "BinarySI" && nanos % 1_000_000_000n === 0n) {
    const bytes = nanos / 1_000_000_000n;
    for (let power = 6; power >= 1; power--) {
      const unit = 1024n ** BigInt(power);
      if (bytes % unit === 0n) {
        const suffix = Object.keys(BINARY_SUFFIXES).find((s) => BINARY_SUFFIXES[s] === power) as string;
        return `${prefix}${bytes / unit}${suffix}`;
      }
    }
    return `${prefix}${bytes}`;
  }
  for (let exponent = 18; exponent >= -9; exponent -= 3) {
    const unit = 10n ** BigInt(exponent + 9);
    if (nanos % unit === 0n) {
      const mantissa = nanos / unit;
      if (q.format === "DecimalExponent")
        return `${prefix}${mantissa}${exponent === 0 ? "" : `e${exponent}`}`;
      const suffix = Object.keys(DECIMAL_SUFFIXES).find((s) => DECIMAL_SUFFIXES[s] === exponent) as string;
      return `${prefix}${mantissa}${suffix}`;
    }
  }
  return `${prefix}${nanos}n`;
}

/** Whole CPUs a CPU quantity amounts to, rounded up (`100m` → 1, `2` → 2, `2500m` → 3). */
export function cpuCores(text: string): number {
  const { nanos } = parseQuantity(text, "cpu");
  return Number((nanos + 999_999_999n) / 1_000_000_000n);
}
