package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

class DeformConv2dTest {

    static List<String> goldens() {
        return PluginHarness.goldenNames("DeformConv2d");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        System.out.println("PARITY " + name + " " + PluginHarness.assertGoldenParity(name));
    }
}
