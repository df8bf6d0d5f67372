// Cold start, Node: the built package as npm users load it, from process start to the first
// lock held and released.
import { tryAcquire } from "../dist/mod.js";

tryAcquire(process.argv[2])?.releaseSync();
