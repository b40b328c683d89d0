import { VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import { CertificateAuthority, type X509Svid } from "./certificate-authority.js";
import { renewalTime, svidRotation$ } from "./svid-rotation.js";

describe("svidRotation$", () => {
  it("renews at half the lifetime minus jitter, with a new key each time", async () => {
    const scheduler = new VirtualTimeScheduler();
    const base = Date.UTC(2030, 0, 1);
    const clock = () => base + scheduler.now();
    const ca = await CertificateAuthority.selfSigned({
      trustDomain: "example.org",
      clock,
      scheduler,
      backdate: 0,
    });
    const received: X509Svid[] = [];
    let wake: (() => void) | undefined;
    const next = () =>
      new Promise<void>((resolve) => {
        wake = resolve;
      });
    const arrived = next();
    const subscription = svidRotation$({
      ca,
      identity: "spiffe://example.org/ns/a/sa/b",
      ttl: "10h",
      jitter: 0.1,
      random: () => 0.5,
      scheduler,
      clock,
    }).subscribe((svid) => {
      received.push(svid);
      wake?.();
    });
    await arrived;
    expect(received[0]!.notBefore.getTime()).toBe(base);
    // 50% of 10h, minus 0.1 * 0.5 of that: 4h45m.
    const expectedAt = 4.75 * 3_600_000;
    expect(renewalTime(received[0]!, 0.5, 0.1, () => 0.5)).toBe(base + expectedAt);
    const renewed = next();
    scheduler.flush();
    await renewed;
    expect(received).toHaveLength(2);
    expect(received[1]!.notBefore.getTime()).toBe(base + expectedAt);
    expect(received[1]!.privateKey).not.toBe(received[0]!.privateKey);
    subscription.unsubscribe();
    ca.close();
  });
});
