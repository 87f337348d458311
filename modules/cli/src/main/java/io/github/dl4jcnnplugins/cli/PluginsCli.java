package io.github.dl4jcnnplugins.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.io.StringWriter;

/**
 * {@code bin/plugins}: the command line of dl4j-cnn-plugins.
 *
 * <ul>
 *   <li>{@code forward}: runs golden cases written by {@code make_goldens.py} through the plug-ins and writes
 *       the results as {@code .npz}; compares them with the reference results when the input holds them.</li>
 *   <li>{@code bench}: CPU timing of the plug-ins (float32, train mode), in the layout of {@code bench_torch.py}.</li>
 * </ul>
 *
 * <p>Errors are one line on stderr ({@code --verbose} adds the stack trace). Exit codes: 0 success, 1 a case
 * failed or could not be run, 2 bad command line.
 */
@Command(name = "plugins",
        mixinStandardHelpOptions = true,
        versionProvider = PluginsCli.Version.class,
        description = "dl4j-cnn-plugins: parity runs against the PyTorch reference and CPU benchmarks.",
        subcommands = {ForwardCommand.class, BenchCommand.class, BackboneCommand.class, CommandLine.HelpCommand.class},
        footer = {"",
                "Examples:",
                "  bin/plugins forward --dir modules/plugins/src/test/resources/goldens",
                "  bin/plugins forward --case se.json --npz se.npz --out se.out.npz",
                "  bin/plugins bench --cases bench_cases.json --only se_256 blurpool_256",
                "",
                "bin/plugins passes JAVA_OPTS to the JVM and, for bench, sets",
                "OMP_NUM_THREADS from --threads unless it is already set.",
                "Exit codes: 0 success, 1 a case failed or could not run, 2 bad usage."})
public final class PluginsCli implements Runnable {

    /** Exit code of a failed or unrunnable case. */
    public static final int EXIT_FAILURE = 1;

    @Spec
    CommandSpec spec;

    /** {@code --verbose}, accepted before or after the subcommand. */
    @Option(names = "--verbose", scope = ScopeType.INHERIT,
            description = "Print stack traces with errors.")
    boolean verbose;

    /** Without a subcommand: print the usage. */
    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line (one-line errors, exit codes as documented above). */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new PluginsCli());
        cl.setParameterExceptionHandler(PluginsCli::badUsage);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            error(cmd, null, e, isVerbose(cmd));
            return EXIT_FAILURE;
        });
        return cl;
    }

    private static int badUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        String name = cmd.getCommandSpec().qualifiedName();
        cmd.getErr().println(name + ": " + e.getMessage() + " (see '" + name + " --help')");
        cmd.getErr().flush();
        return cmd.getCommandSpec().exitCodeOnInvalidInput();
    }

    static boolean isVerbose(CommandLine cmd) {
        CommandLine root = cmd;
        while (root.getParent() != null) {
            root = root.getParent();
        }
        return root.<PluginsCli>getCommand().verbose;
    }

    /**
     * Prints {@code e} as one line on the command's stderr, after {@code context} if given (the stack trace too
     * when {@code verbose}).
     */
    static void error(CommandLine cmd, String context, Throwable e, boolean verbose) {
        PrintWriter err = cmd.getErr();
        err.println(cmd.getCommandSpec().qualifiedName() + ": " + (context == null ? "" : context + ": ") + oneLine(e));
        if (verbose) {
            StringWriter sw = new StringWriter();
            e.printStackTrace(new PrintWriter(sw));
            err.print(sw);
        }
        err.flush();
    }

    /** The message of {@code e} on one line; the class name as well unless it is an ordinary argument/IO error. */
    static String oneLine(Throwable e) {
        Throwable t = e;
        while ((t.getMessage() == null || t.getMessage().isBlank()) && t.getCause() != null) {
            t = t.getCause();
        }
        String msg = t.getMessage() == null ? "" : t.getMessage().replaceAll("\\s*\\R\\s*", " ").trim();
        boolean plain = t instanceof IllegalArgumentException || t instanceof java.io.IOException
                || t instanceof IllegalStateException;
        if (msg.isEmpty()) {
            return t.getClass().getName();
        }
        return plain ? msg : t.getClass().getSimpleName() + ": " + msg;
    }

    /** Version from the jar manifest (or "development" when run from classes). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = PluginsCli.class.getPackage().getImplementationVersion();
            return new String[]{"dl4j-cnn-plugins " + (v != null ? v : "(development build)") + ", "
                    + SystemInfo.versions()};
        }
    }
}
