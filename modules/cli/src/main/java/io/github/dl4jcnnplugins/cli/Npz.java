package io.github.dl4jcnnplugins.cli;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes {@code .npz} files as {@code numpy.savez} does: an uncompressed zip with one {@code <key>.npy} entry
 * per array, readable by {@code numpy.load} and {@code Nd4j.createFromNpzFile}.
 */
final class Npz {
    private Npz() {
    }

    /** Writes {@code arrays} (in iteration order) to {@code file}, replacing it atomically where possible. */
    static void write(Path file, Map<String, INDArray> arrays) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Path tmp = Files.createTempFile(parent, file.getFileName().toString(), ".tmp");
        try {
            try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(tmp));
                 ZipOutputStream zip = new ZipOutputStream(os)) {
                for (Map.Entry<String, INDArray> e : arrays.entrySet()) {
                    INDArray a = e.getValue();
                    // toNpyByteArray writes the buffer as it lies: give it a C-ordered, compact copy.
                    if (a.ordering() != 'c' || a.isView()) {
                        a = a.dup('c');
                    }
                    byte[] npy = Nd4j.toNpyByteArray(a);
                    ZipEntry entry = new ZipEntry(e.getKey() + ".npy");
                    entry.setMethod(ZipEntry.STORED);
                    entry.setSize(npy.length);
                    entry.setCompressedSize(npy.length);
                    CRC32 crc = new CRC32();
                    crc.update(npy);
                    entry.setCrc(crc.getValue());
                    zip.putNextEntry(entry);
                    zip.write(npy);
                    zip.closeEntry();
                }
            }
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (java.nio.file.AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
