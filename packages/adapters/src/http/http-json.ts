import { CaError } from "@meshlet/ca";

/** POSTs or GETs JSON with a timeout; errors name the signer, the URL and the server's answer. */
export async function requestJson(
  signer: string,
  url: string,
  init: { method: "GET" | "POST"; headers?: Record<string, string>; body?: unknown; timeoutMs: number },
): Promise<{ status: number; json: unknown; text: string }> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method,
      headers: {
        accept: "application/json",
        ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(init.timeoutMs),
    });
  } catch (error) {
    throw CaError.from(error, "external-signer", `${signer}: ${init.method} ${url} failed`);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}
