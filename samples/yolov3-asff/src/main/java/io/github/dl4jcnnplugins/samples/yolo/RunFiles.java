package io.github.dl4jcnnplugins.samples.yolo;

import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;

/** Atomic file writes (temp file in the same folder, then rename) and JSON. */
final class RunFiles {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private RunFiles() {
    }

    interface Writer {
        void write(Path tmp) throws IOException;
    }

    /** Writes {@code target} through {@code writer} into a temporary sibling, then renames it over the target. */
    static void atomically(Path target, Writer writer) {
        try {
            Path dir = target.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            String name = target.getFileName().toString();
            // keep the extension last: writers such as XChart's BitmapEncoder append one otherwise
            String suffix = name.contains(".") ? ".tmp" + name.substring(name.lastIndexOf('.')) : ".tmp";
            Path tmp = Files.createTempFile(dir, name, suffix);
            try {
                writer.write(tmp);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (java.nio.file.AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not write " + target, e);
        }
    }

    static void writeJson(Path target, Object value) {
        atomically(target, tmp -> JSON.writeValue(tmp.toFile(), value));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> readJson(Path file) {
        try {
            return JSON.readValue(file.toFile(), Map.class);
        } catch (IOException e) {
            throw new UncheckedIOException("could not read " + file, e);
        }
    }
}
