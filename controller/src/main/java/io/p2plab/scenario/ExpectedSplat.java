package io.p2plab.scenario;

import java.util.regex.Pattern;

/**
 * A kernel splat a scenario provokes on purpose ({@code expect-splats:}): reports whose text matches
 * {@code match} do not fail the case; if {@code required}, the case fails when no report matches.
 */
public record ExpectedSplat(Pattern match, String reason, boolean required, String where) {}
