package io.p2plab.util;

/** Text for HTML and XML: one escaping for the JUnit XML, report.html and the topology pictures. */
public final class Markup {
    private Markup() {}

    /**
     * {@code & < > " '} escaped (content and attribute values); control characters other than
     * newline and tab, and U+FFFE/U+FFFF (not allowed in XML), become '?'; carriage returns go.
     */
    public static String escape(String s) {
        if (s == null) return "";
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                case '\n', '\t' -> b.append(c);
                case '\r' -> { }
                default -> b.append(c < 0x20 || c == 0xFFFE || c == 0xFFFF ? '?' : c);
            }
        }
        return b.toString();
    }
}
