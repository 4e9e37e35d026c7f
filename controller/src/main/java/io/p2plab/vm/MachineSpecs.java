package io.p2plab.vm;

import io.p2plab.spec.Doc;

import java.nio.file.Path;

/** Helpers to parse machine specs from files or strings. */
public final class MachineSpecs {
    private MachineSpecs() {}

    public static MachineSpec parse(String yaml) {
        return MachineSpec.parse(Doc.parse(Path.of("<inline>"), yaml).node());
    }

    /** A spec file: either the machine mapping itself or a document with a top-level 'machine:' key. */
    public static MachineSpec load(Path file) {
        var n = Doc.load(file).node();
        if (n.isObject() && n.has("machine")) n = n.get("machine");
        return MachineSpec.parse(n);
    }
}
