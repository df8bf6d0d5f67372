/**
 * The package version, as in `deno.json` and `package.json` (a test keeps the three equal).
 *
 * @module
 */

/** The package version. */
export const VERSION = "0.1.0";
