/**
 * The {@code bin/plugins} command line: {@code forward} runs PyTorch golden cases through the plug-ins and checks
 * parity, {@code bench} times them at realistic sizes. Built on the library's public API only
 * ({@code io.github.dl4jcnnplugins.torch}).
 */
package io.github.dl4jcnnplugins.cli;
