/**
 * The credential (an API key or an OIDC ID token) is held in memory, and in sessionStorage only
 * when the user asks to stay signed in for this tab: never localStorage, never a cookie or URL.
 */
const KEY = "modelvault-console-credential";

export function rememberedCredential(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function remember(credential: string | undefined): void {
  try {
    if (credential) sessionStorage.setItem(KEY, credential);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage refused (private mode, quota): the credential stays in memory only.
  }
}
