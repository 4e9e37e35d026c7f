package io.p2plab.scenario;

import io.p2plab.spec.SpecException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;
import org.xml.sax.SAXParseException;

import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reading JUnit XML (ours, or any tool's: {@code <testsuites>} or a lone {@code <testsuite>}): case
 * durations for balanced shards, and merging the shards' files into one. A file that is not JUnit XML
 * is a {@link SpecException} naming the file (and line), never skipped silently.
 */
public final class JunitXml {
    private JunitXml() {}

    /** One testcase as read. */
    public record TestCase(String suite, String classname, String name, double time, String status, Element element) {}

    static Document parse(Path file) {
        try {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            f.setExpandEntityReferences(false);
            f.setXIncludeAware(false);
            DocumentBuilder b = f.newDocumentBuilder();
            b.setErrorHandler(null);
            byte[] data = Files.readAllBytes(file);
            if (data.length == 0) throw new SpecException(file.toString(), "empty file, not JUnit XML");
            Document d = b.parse(new java.io.ByteArrayInputStream(data), file.toUri().toString());
            String root = d.getDocumentElement().getTagName();
            if (!root.equals("testsuites") && !root.equals("testsuite"))
                throw new SpecException(file.toString(), "not JUnit XML: the root element is <" + root
                        + ">, expected <testsuites> or <testsuite>");
            return d;
        } catch (NoSuchFileException e) {
            throw new SpecException(file.toString(), "no such file");
        } catch (SAXParseException e) {
            throw new SpecException(file + ":" + e.getLineNumber() + ":" + e.getColumnNumber(), "not well-formed XML: " + e.getMessage());
        } catch (SpecException e) {
            throw e;
        } catch (Exception e) {
            throw new SpecException(file.toString(), "cannot read: " + e.getMessage());
        }
    }

    /** Every testcase of the file, in document order; a testcase without a name or with a bad time is an error. */
    public static List<TestCase> cases(Path file) {
        Document d = parse(file);
        List<TestCase> out = new ArrayList<>();
        NodeList tcs = d.getElementsByTagName("testcase");
        for (int i = 0; i < tcs.getLength(); i++) {
            Element tc = (Element) tcs.item(i);
            String name = tc.getAttribute("name");
            if (name.isEmpty()) throw new SpecException(file.toString(), "testcase #" + (i + 1) + " has no name attribute");
            double time = 0;
            String t = tc.getAttribute("time");
            if (!t.isEmpty()) {
                try {
                    time = Double.parseDouble(t.replace(",", ""));
                } catch (NumberFormatException e) {
                    throw new SpecException(file.toString(), "testcase '" + name + "' has a bad time attribute '" + t + "'");
                }
                if (!(time >= 0) || Double.isInfinite(time))
                    throw new SpecException(file.toString(), "testcase '" + name + "' has a bad time attribute '" + t + "'");
            }
            Node p = tc.getParentNode();
            String suite = p instanceof Element e && e.getTagName().equals("testsuite") ? e.getAttribute("name") : "";
            out.add(new TestCase(suite, tc.getAttribute("classname"), name, time, status(tc), tc));
        }
        return out;
    }

    static String status(Element tc) {
        for (Node n = tc.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (!(n instanceof Element e)) continue;
            switch (e.getTagName()) {
                case "failure": return "failure";
                case "error": return "error";
                case "skipped": return "skipped";
                default: break;
            }
        }
        return "passed";
    }

    /** Case name -> seconds from previous runs' JUnit XML (the later file wins for a case in several). */
    public static Map<String, Double> durations(List<Path> files) {
        Map<String, Double> out = new LinkedHashMap<>();
        for (Path f : files) for (TestCase tc : cases(f)) out.put(tc.name(), tc.time());
        return out;
    }

    /**
     * Merges JUnit XML files (one per shard) into {@code out}: testsuites of the same name become one
     * (their counts recomputed from the cases), suites and cases sorted by name so the result does not
     * depend on the order of the shards. The same case in two files is an error (shards are disjoint).
     * Returns the merged cases.
     */
    public static List<TestCase> merge(List<Path> inputs, Path out) throws IOException {
        if (inputs.isEmpty()) throw new SpecException("merge-junit", "no input files");
        Map<String, Map<String, TestCase>> bySuite = new TreeMap<>();
        Map<String, Path> seen = new LinkedHashMap<>();
        List<TestCase> all = new ArrayList<>();
        for (Path f : inputs) {
            for (TestCase tc : cases(f)) {
                String key = tc.classname() + "\u0000" + tc.name();
                Path prev = seen.putIfAbsent(key, f);
                if (prev != null)
                    throw new SpecException(f.toString(), "case '" + tc.name() + "' (" + tc.classname() + ") is also in " + prev
                            + ": shards must be disjoint");
                bySuite.computeIfAbsent(tc.suite(), k -> new TreeMap<>()).put(tc.name() + "\u0000" + tc.classname(), tc);
                all.add(tc);
            }
        }
        Document d;
        try {
            d = DocumentBuilderFactory.newInstance().newDocumentBuilder().newDocument();
        } catch (Exception e) {
            throw new IOException(e);
        }
        Element root = d.createElement("testsuites");
        d.appendChild(root);
        int tests = 0, failures = 0, errors = 0, skipped = 0;
        double time = 0;
        for (var e : bySuite.entrySet()) {
            Element s = d.createElement("testsuite");
            s.setAttribute("name", e.getKey());
            int t = 0, fl = 0, er = 0, sk = 0;
            double tm = 0;
            for (TestCase tc : e.getValue().values()) {
                s.appendChild(d.importNode(tc.element(), true));
                t++;
                tm += tc.time();
                switch (tc.status()) {
                    case "failure" -> fl++;
                    case "error" -> er++;
                    case "skipped" -> sk++;
                    default -> { }
                }
            }
            s.setAttribute("tests", Integer.toString(t));
            s.setAttribute("failures", Integer.toString(fl));
            s.setAttribute("errors", Integer.toString(er));
            s.setAttribute("skipped", Integer.toString(sk));
            s.setAttribute("time", String.format(Locale.ROOT, "%.3f", tm));
            root.appendChild(s);
            tests += t; failures += fl; errors += er; skipped += sk; time += tm;
        }
        root.setAttribute("tests", Integer.toString(tests));
        root.setAttribute("failures", Integer.toString(failures));
        root.setAttribute("errors", Integer.toString(errors));
        root.setAttribute("skipped", Integer.toString(skipped));
        root.setAttribute("time", String.format(Locale.ROOT, "%.3f", time));
        StringWriter w = new StringWriter();
        try {
            Transformer tr = TransformerFactory.newInstance().newTransformer();
            tr.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
            tr.setOutputProperty(OutputKeys.INDENT, "yes");
            tr.setOutputProperty("{http://xml.apache.org/xslt}indent-amount", "2");
            tr.transform(new DOMSource(d), new StreamResult(w));
        } catch (Exception e) {
            throw new IOException("cannot serialise the merged XML: " + e.getMessage(), e);
        }
        if (out.toAbsolutePath().getParent() != null) Files.createDirectories(out.toAbsolutePath().getParent());
        Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
        Files.writeString(tmp, w.toString().replaceAll("(?m)^[ \t]+\r?\n", ""));
        Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return all;
    }
}
