// Prints what the module reports here, as one line of JSON.
// argv: probe [backend]           probe({ backend })
//       inspect <path> [backend]  inspect(path, { backend })
import { inspect, probe } from "../../mod.ts";
import type { BackendRequest } from "../../src/types.ts";
import { args } from "./args.ts";

const [what, ...rest] = args;
if (what === "probe") {
  console.log(JSON.stringify(probe({ backend: rest[0] as BackendRequest | undefined })));
} else {
  console.log(JSON.stringify(inspect(rest[0], { backend: rest[1] as BackendRequest | undefined })));
}
