import { typMatches } from "./token-types.js";

/**
 * Header members that let a token choose its own key or processing (RFC 8725 §2.1, §3.1):
 * keys come only from what the verifier pins or has on record, never from the token.
 * `jwk` is allowed only where the protocol puts the key there (DPoP, RFC 9449 §4.2).
 */
const FORBIDDEN_MEMBERS = ["jku", "x5u", "x5c", "jwk", "crit", "b64", "zip"] as const;

export interface JoseHeaderRules {
  /** The one algorithm this token kind and key may use (RFC 8725 §3.1). */
  alg: "ES256";
  /** The token kind's explicit type (RFC 8725 §3.11); `application/` prefix and case are tolerated. */
  typ: string;
  /** Only DPoP proofs carry their key in the header. */
  allowJwk?: boolean;
}

/** Which rule a header broke, with the member involved; each verifier maps it to its own code. */
export interface JoseHeaderProblem {
  check: "alg" | "typ" | "forbidden";
  member: string;
  message: string;
}

/**
 * The header check every ModelVault verifier runs before any signature or claim (manifest,
 * license, DPoP proof, usage report, audit checkpoint): algorithm pinned, explicit type, and no
 * member that would make the token pick its own key. Returns the first problem, or undefined.
 */
export function checkJoseHeader(
  header: Record<string, unknown>,
  rules: JoseHeaderRules,
): JoseHeaderProblem | undefined {
  if (header.alg !== rules.alg) return { check: "alg", member: "alg", message: `alg must be ${rules.alg}` };
  if (!typMatches(header.typ, rules.typ))
    return { check: "typ", member: "typ", message: `typ must be ${rules.typ}` };
  const forbidden = FORBIDDEN_MEMBERS.find((m) => m in header && !(m === "jwk" && rules.allowJwk));
  if (forbidden)
    return { check: "forbidden", member: forbidden, message: `header must not carry "${forbidden}"` };
  return undefined;
}
