package io.github.dl4jcnnplugins.cli;

import io.github.dl4jcnnplugins.torch.ReferenceModules;
import io.github.dl4jcnnplugins.torch.Parity;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import io.github.dl4jcnnplugins.torch.StateDictImport;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * {@code plugins forward}: runs golden cases ({@code <name>.json} + {@code <name>.npz} as written by
 * {@code make_goldens.py}) through {@link ReferenceRunner#run(String, JsonNode, Map)} and writes the results
 * ({@code eval.output}, {@code train.output}, {@code grad.input.<i>}, {@code grad.param.<key>},
 * {@code train.param.<key>}) as an {@code .npz}. When the input npz holds reference results, prints the worst
 * relative error ({@link Parity#error}: {@code max|ours - ref| / max(max|ref|, 1e-6)}) and PASS / FAIL.
 */
@Command(name = "forward",
        description = {
                "Run golden cases through the plug-ins; write and check the results.",
                "",
                "A case is <name>.json + <name>.npz as written by make_goldens.py. The results (eval.output, "
                        + "train.output, grad.input.<i>, grad.param.<key>, train.param.<key>) are written as .npz. "
                        + "If the input npz holds reference results, one line per case gives the worst relative "
                        + "error max|ours-ref|/max|ref| over all arrays and PASS/FAIL.",
                "Exit code 1 if any case fails or cannot be run (the other cases still run)."},
        sortOptions = false,
        mixinStandardHelpOptions = true)
final class ForwardCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String OUT_SUFFIX = ".out.npz";

    @Spec
    CommandSpec spec;

    @Option(names = "--case", paramLabel = "CASE.json", description = "Case description (module, args).")
    Path caseJson;

    @Option(names = "--npz", paramLabel = "CASE.npz", description = "Inputs and parameters (and reference results).")
    Path npz;

    @Option(names = "--out", paramLabel = "OUT.npz",
            description = "Where to write the results (default: <name>.out.npz next to CASE.npz).")
    Path out;

    @Option(names = "--dir", paramLabel = "DIR",
            description = "Run every DIR/<name>.json + DIR/<name>.npz, writing DIR/<name>.out.npz.")
    Path dir;

    @Option(names = "--tolerance", paramLabel = "TOL", defaultValue = "1e-6",
            description = "PASS if the worst relative error is at most this (default: ${DEFAULT-VALUE}).")
    double tolerance;

    /** One case: its name and files. */
    record Case(String name, Path json, Path npz, Path out) {
    }

    enum Status { PASS, FAIL, WRITTEN, ERROR }

    @Override
    public Integer call() throws IOException {
        List<Case> cases = cases();
        PrintWriter out = spec.commandLine().getOut();
        int pass = 0;
        int fail = 0;
        int written = 0;
        int errors = 0;
        for (Case c : cases) {
            Status s = runCase(c);
            switch (s) {
                case PASS -> pass++;
                case FAIL -> fail++;
                case WRITTEN -> written++;
                case ERROR -> errors++;
            }
        }
        if (dir != null) {
            List<String> parts = new ArrayList<>();
            if (pass > 0) {
                parts.add(pass + " PASS");
            }
            if (fail > 0) {
                parts.add(fail + " FAIL");
            }
            if (written > 0) {
                parts.add(written + " without reference results");
            }
            if (errors > 0) {
                parts.add(errors + (errors == 1 ? " error" : " errors"));
            }
            out.println(cases.size() + (cases.size() == 1 ? " case: " : " cases: ") + String.join(", ", parts));
            out.flush();
        }
        return fail + errors > 0 ? PluginsCli.EXIT_FAILURE : 0;
    }

    /** The cases named on the command line. */
    private List<Case> cases() throws IOException {
        CommandLine cl = spec.commandLine();
        if (dir != null) {
            if (caseJson != null || npz != null || out != null) {
                throw new CommandLine.ParameterException(cl, "--dir cannot be combined with --case, --npz or --out");
            }
            if (!Files.isDirectory(dir)) {
                throw new CommandLine.ParameterException(cl, "--dir " + dir + ": no such directory");
            }
            List<Case> cases = new ArrayList<>();
            try (Stream<Path> files = Files.list(dir)) {
                for (Path json : files.filter(p -> p.getFileName().toString().endsWith(".json")).sorted().toList()) {
                    String name = json.getFileName().toString();
                    name = name.substring(0, name.length() - ".json".length());
                    Path data = dir.resolve(name + ".npz");
                    if (name.endsWith(".out") || !Files.isRegularFile(data)) {
                        continue; // not a golden case (e.g. a cases list)
                    }
                    cases.add(new Case(name, json, data, dir.resolve(name + OUT_SUFFIX)));
                }
            }
            if (cases.isEmpty()) {
                throw new IllegalArgumentException("no cases in " + dir + " (expected <name>.json + <name>.npz pairs)");
            }
            return cases;
        }
        if (caseJson == null || npz == null) {
            throw new CommandLine.ParameterException(cl, "give --case CASE.json --npz CASE.npz [--out OUT.npz], or --dir DIR");
        }
        String file = npz.getFileName().toString();
        String base = file.endsWith(".npz") ? file.substring(0, file.length() - 4) : file;
        Path target = out != null ? out : npz.resolveSibling(base + OUT_SUFFIX);
        if (target.toAbsolutePath().normalize().equals(npz.toAbsolutePath().normalize())) {
            throw new CommandLine.ParameterException(cl, "--out must differ from --npz");
        }
        String name = caseJson.getFileName().toString().replaceFirst("\\.json$", "");
        return List.of(new Case(name, caseJson, npz, target));
    }

    /** Runs, writes and checks one case; errors are reported on one line and give {@link Status#ERROR}. */
    private Status runCase(Case c) {
        String module = null;
        try {
            JsonNode meta = readJson(c.json());
            JsonNode m = meta.get("module");
            if (m == null || !m.isTextual()) {
                throw new IllegalArgumentException(c.json() + " has no \"module\" (expected a case written by make_goldens.py)");
            }
            module = m.asText();
            if (!ReferenceModules.known().contains(module)) {
                throw new IllegalArgumentException("unknown module '" + module + "'; this version knows "
                        + ReferenceModules.known());
            }
            Map<String, INDArray> data = readNpz(c.npz());
            Map<String, INDArray> results = ReferenceRunner.run(module, meta.get("args"), data);
            Npz.write(c.out(), results);
            return report(c, module, data, results);
        } catch (Exception | LinkageError | OutOfMemoryError e) {
            PluginsCli.error(spec.commandLine(), c.name() + (module == null ? "" : " (" + module + ")"), e,
                    PluginsCli.isVerbose(spec.commandLine()));
            return Status.ERROR;
        }
    }

    /** Reads an npz; a truncated or non-zip file is an error (ND4J alone reads what it can of a truncated one). */
    private static Map<String, INDArray> readNpz(Path npz) throws IOException {
        if (Files.isRegularFile(npz)) {
            try (ZipFile z = new ZipFile(npz.toFile())) {
                if (z.size() == 0) {
                    throw new IOException(npz + " is an empty .npz");
                }
            } catch (ZipException e) {
                throw new IOException("cannot read " + npz + " as .npz (truncated, or not a zip file)", e);
            }
        }
        return StateDictImport.readNpz(npz.toFile());
    }

    private static JsonNode readJson(Path json) throws IOException {
        if (!Files.isRegularFile(json)) {
            throw new IOException("no such file: " + json);
        }
        try {
            return JSON.readTree(json.toFile());
        } catch (IOException e) {
            throw new IOException("cannot read " + json + " as JSON: " + PluginsCli.oneLine(e), e);
        }
    }

    /** Compares with the reference results in {@code data} (if any) and prints the case's line. */
    private Status report(Case c, String module, Map<String, INDArray> data, Map<String, INDArray> results) {
        double worst = 0;
        String worstKey = null;
        List<String> problems = new ArrayList<>();
        int compared = 0;
        for (Map.Entry<String, INDArray> e : data.entrySet()) {
            String k = e.getKey();
            if (k.startsWith("input.") || k.startsWith("param.") || k.equals("grad.upstream")) {
                continue;
            }
            compared++;
            INDArray mine = results.get(k);
            if (mine == null) {
                problems.add(k + " not produced");
                continue;
            }
            if (!Arrays.equals(mine.shape(), e.getValue().shape())) {
                problems.add(k + " has shape " + Arrays.toString(mine.shape()) + ", reference "
                        + Arrays.toString(e.getValue().shape()));
                continue;
            }
            double err = relativeError(e.getValue(), mine);
            if (!(err <= tolerance)) {
                problems.add(k + " " + String.format(Locale.ROOT, "%.2e", err));
            }
            if (worstKey == null || !(err <= worst)) {
                worst = err;
                worstKey = k;
            }
        }
        Status status = compared == 0 ? Status.WRITTEN : problems.isEmpty() ? Status.PASS : Status.FAIL;
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-32s %-20s %-5s", c.name(), module,
                status == Status.WRITTEN ? "-" : status.name()));
        if (status == Status.WRITTEN) {
            line.append(" no reference results in ").append(c.npz().getFileName()).append("; wrote ").append(c.out());
        } else {
            if (worstKey != null) {
                line.append(String.format(Locale.ROOT, " max rel err %.2e (%s)", worst, worstKey));
            }
            line.append(String.format(Locale.ROOT, ", %d arrays", compared));
            if (status == Status.FAIL) {
                line.append(", tolerance ").append(tolerance).append(": ").append(String.join("; ", problems));
            }
        }
        PrintWriter out = spec.commandLine().getOut();
        out.println(line);
        out.flush();
        return status;
    }

    /** The project's parity metric ({@link Parity#error}). */
    static double relativeError(INDArray expected, INDArray actual) {
        return Parity.error(expected, actual);
    }
}
