/** The console's only way to the server: same origin, the credential in the Authorization header. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export class Api {
  constructor(private readonly credential: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.credential}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      credentials: "omit",
      cache: "no-store",
    });
    const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    if (!res.ok)
      throw new ApiError(
        res.status,
        json.error?.code ?? `HTTP_${res.status}`,
        json.error?.message ?? res.statusText,
      );
    return json as T;
  }

  get<T>(path: string, query: Query = {}): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
    const qs = q.toString();
    return this.call<T>("GET", qs ? `${path}?${qs}` : path);
  }

  send<T>(method: "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T> {
    return this.call<T>(method, path, body);
  }
}
