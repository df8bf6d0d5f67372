/**
 * The package version, as in `deno.json` (a test keeps them equal).
 *
 * @module
 */

/** The package version. */
export const VERSION = "0.1.0";
