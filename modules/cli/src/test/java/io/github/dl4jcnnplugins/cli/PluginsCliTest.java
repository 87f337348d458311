package io.github.dl4jcnnplugins.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The commands run in-process, as {@code bin/plugins} runs them. */
class PluginsCliTest {

    /** Two small golden cases copied from modules/plugins (make_goldens.py output). */
    private static final List<String> GOLDENS = List.of("blurpool_f1", "se_c32_r8");

    @TempDir
    Path tmp;

    /** Exit code, stdout and stderr of one command line. */
    record Run(int exit, String out, String err) {
        List<String> errLines() {
            return err.lines().filter(l -> !l.isBlank()).toList();
        }
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = PluginsCli.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    private void copyGolden(String name, String as) throws IOException {
        for (String ext : new String[]{".json", ".npz"}) {
            try (InputStream in = getClass().getResourceAsStream("/goldens/" + name + ext)) {
                assertTrue(in != null, "missing test resource goldens/" + name + ext);
                Files.copy(in, tmp.resolve(as + ext));
            }
        }
    }

    private static Map<String, INDArray> npz(Path p) throws Exception {
        return Nd4j.createFromNpzFile(p.toFile());
    }

    @Test
    void forwardDirWritesResultsThatMatchTheGoldens() throws Exception {
        for (String g : GOLDENS) {
            copyGolden(g, g);
        }
        Run r = run("forward", "--dir", tmp.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("", r.err());
        for (String g : GOLDENS) {
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith(g + " ") && l.contains(" PASS ")), r.out());
            Path out = tmp.resolve(g + ".out.npz");
            assertTrue(Files.isRegularFile(out), out + " not written");
            Map<String, INDArray> ours = npz(out);
            Map<String, INDArray> ref = npz(tmp.resolve(g + ".npz"));
            assertTrue(ours.keySet().containsAll(Set.of("eval.output", "train.output", "grad.input.0")), ours.keySet().toString());
            INDArray a = ours.get("eval.output");
            INDArray e = ref.get("eval.output");
            assertEquals(Arrays.toString(e.shape()), Arrays.toString(a.shape()));
            assertTrue(ForwardCommand.relativeError(e, a) <= 1e-6, g + ": eval.output differs");
        }
        assertTrue(r.out().contains("2 cases: 2 PASS"), r.out());

        // A second run skips the .out.npz files it wrote.
        Run again = run("forward", "--dir", tmp.toString());
        assertEquals(0, again.exit(), again.err());
        assertTrue(again.out().contains("2 cases: 2 PASS"), again.out());
    }

    @Test
    void forwardSingleCase() throws Exception {
        copyGolden("blurpool_f1", "case");
        Path out = tmp.resolve("sub/result.npz");
        Run r = run("forward", "--case", tmp.resolve("case.json").toString(), "--npz", tmp.resolve("case.npz").toString(),
                "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("case ") && r.out().contains(" PASS "), r.out());
        assertTrue(npz(out).containsKey("train.output"));
    }

    @Test
    void unknownModuleIsOneLineAndTheOtherCasesStillRun() throws Exception {
        copyGolden("blurpool_f1", "blurpool_f1");
        copyGolden("blurpool_f1", "vit");
        Files.writeString(tmp.resolve("vit.json"), "{\"module\": \"VisionTransformer\", \"args\": {\"channels\": 4}}");

        Run single = run("forward", "--case", tmp.resolve("vit.json").toString(),
                "--npz", tmp.resolve("vit.npz").toString());
        assertNotEquals(0, single.exit());
        assertEquals(1, single.errLines().size(), single.err());
        assertTrue(single.err().contains("unknown module 'VisionTransformer'"), single.err());
        assertFalse(Files.exists(tmp.resolve("vit.out.npz")));

        Run dir = run("forward", "--dir", tmp.toString());
        assertNotEquals(0, dir.exit());
        assertEquals(1, dir.errLines().size(), dir.err());
        assertTrue(dir.err().startsWith("plugins forward: vit (VisionTransformer): unknown module 'VisionTransformer'"), dir.err());
        assertTrue(Files.isRegularFile(tmp.resolve("blurpool_f1.out.npz")));
        assertTrue(dir.out().contains("2 cases: 1 PASS, 1 error"), dir.out());
    }

    @Test
    void usageErrorsAreOneLine() {
        Run r = run("forward", "--case", "x.json");
        assertEquals(2, r.exit());
        assertEquals(1, r.errLines().size(), r.err());

        Run help = run();
        assertEquals(0, help.exit());
        assertTrue(help.out().startsWith("Usage: plugins"), help.out());
    }

    @Test
    void benchPrintsARowPerCase() throws Exception {
        Path cases = tmp.resolve("cases.json");
        Files.writeString(cases, """
                [{"name": "blur_tiny", "module": "BlurPool", "args": {"channels": 4, "filt_size": 3},
                  "inputs": [[2, 4, 9, 7]]},
                 {"name": "vit_tiny", "module": "VisionTransformer", "args": {"channels": 4}, "inputs": [[1, 4, 8, 8]]},
                 {"name": "se_skipped", "module": "SEBlock", "args": {"channels": 4}, "inputs": [[1, 4, 8, 8]]}]
                """);
        Run r = run("bench", "--cases", cases.toString(), "--runs", "1", "--warmup", "0", "--warmup-seconds", "0", "--threads", "1",
                "--only", "blur_tiny", "vit_tiny");
        assertEquals(0, r.exit(), r.err());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.get(0).startsWith("# dl4j-cnn-plugins"), r.out());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("name ") && l.contains("fwd+bwd ms")), r.out());
        assertTrue(lines.stream().anyMatch(l -> l.matches("blur_tiny +BlurPool +2x4x9x7 +[0-9.]+ +[0-9.]+ +\\S+ +[0-9.-]+ +[0-9.-]+")), r.out());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("vit_tiny ") && l.contains("unsupported")), r.out());
        assertFalse(r.out().contains("se_skipped"), r.out());
    }
}
