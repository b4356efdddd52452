/** The `exp` claim (Unix seconds) of a JWT, or null when the token is not a JWT we can read. */
export function jwtExpiry(token) {
    const part = token.split(".")[1];
    if (!part)
        return null;
    try {
        const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
        const claims = JSON.parse(atob(b64));
        const exp = claims?.exp;
        return typeof exp === "number" ? exp : null;
    }
    catch {
        return null;
    }
}
