package io.p2plab.util;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class MarkupTest {
    @Test
    void escapesMarkupAndDropsWhatXmlCannotHold() {
        assertThat(Markup.escape("<a href=\"x\">R&D's</a>")).isEqualTo("&lt;a href=&quot;x&quot;&gt;R&amp;D&#39;s&lt;/a&gt;");
        assertThat(Markup.escape("line1\r\nline2\tend\u0001\uFFFE")).isEqualTo("line1\nline2\tend??");
        assertThat(Markup.escape(null)).isEmpty();
    }
}
