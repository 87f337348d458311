package io.github.dl4jcnnplugins.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;

/** Versions and machine facts for headers and {@code --version}. */
final class SystemInfo {
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
