// Compiled once to produce the precompiled header shared by the ATen-using targets.
