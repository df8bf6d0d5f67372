// Cold start's baseline: a script that does nothing, in each runtime.
