package io.github.dl4jcnnplugins.cli;

import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.MatMul;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Versions and machine facts for headers and {@code --version}. */
final class SystemInfo {
    /** {@code nd4j-native-1.0.0-M2.1-linux-x86_64-onednn-avx2.jar}: group 1 is the classifier. */
    private static final Pattern NATIVE_JAR =
            Pattern.compile("nd4j-native-\\d[^/\\\\]*?-((?:linux|macosx|windows|android)-[^/\\\\]+)\\.jar$");

    private SystemInfo() {
    }

    /** {@code "DL4J 1.0.0-M2.1, Java 17.0.15"}. */
    static String versions() {
        return "DL4J " + dl4jVersion() + ", Java " + System.getProperty("java.version");
    }

    /** The version of nd4j-api on the classpath (from its Maven metadata). */
    static String dl4jVersion() {
        try (InputStream in = SystemInfo.class.getResourceAsStream("/META-INF/maven/org.nd4j/nd4j-api/pom.properties")) {
            if (in != null) {
                Properties p = new Properties();
                p.load(in);
                return p.getProperty("version", "unknown");
            }
        } catch (IOException e) {
            // fall through
        }
        return "unknown";
    }

    /**
     * The ND4J native builds on the class path and whether oneDNN is in use, e.g.
     * {@code "nd4j-native linux-x86_64 + linux-x86_64-onednn-avx2, oneDNN on"}: JavaCPP loads the most specific
     * build its CPU supports; with oneDNN in it {@code Conv} routes dilated convolutions around the native op
     * ({@code Conv.Dilated}) and {@code MatMul.batch} multiplies batched products per item ({@code MatMul.Batched}).
     */
    static String nativeBuild() {
        List<String> builds = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path", "").split(File.pathSeparator)) {
            Matcher m = NATIVE_JAR.matcher(entry);
            if (m.find()) {
                builds.add(m.group(1));
            }
        }
        String oneDnn;
        try {
            oneDnn = Conv.oneDnnActive() ? "on" : "off";
        } catch (RuntimeException | LinkageError e) {
            oneDnn = "unknown";
        }
        return "nd4j-native " + (builds.isEmpty() ? "?" : String.join(" + ", builds)) + ", oneDNN " + oneDnn
                + ", dilated convolutions " + Conv.dilatedStrategy() + ", batched products " + MatMul.batchedStrategy();
    }

    /** The CPU model name from /proc/cpuinfo. */
    static String cpuModel() {
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/cpuinfo"));
            for (String l : lines) {
                if (l.startsWith("model name")) {
                    return l.substring(l.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall through
        }
        String arch = System.getProperty("os.arch");
        return arch != null ? arch : "unknown";
    }
}
