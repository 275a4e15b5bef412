"""The registry of diagnostic codes: every error and warning cnnspec reports.

Codes are stable: a code keeps its meaning once published, so editors, CI
scripts and docs/errors.md can rely on it. The hundreds group a code by
kind: E0xx syntax, E1xx names, E2xx values and arguments, E3xx shapes,
E4xx files, definitions and structure, E5xx network selection and --set,
E6xx limits, E7xx pipeline plans, W0xx warnings. docs/errors.md is generated from this table
(`python -m cnnspec.diagnostics.codes > docs/errors.md`) and a test keeps the two equal.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """One diagnostic code: a title, what it means, and a wrong and a fixed example."""

    code: str
    title: str
    explanation: str
    wrong: str = ""
    fixed: str = ""
    #: Command-line options the examples need (e.g. "--set depth=3").
    args: str = ""


_N = "network Net {\n    input: 3 x 32 x 32\n"

CODES: dict[str, Code] = {
    c.code: c
    for c in (
        # ------------------------------------------------------------ syntax
        Code(
            "E001",
            "unexpected character",
            "The file holds a character that no token of the language starts with, such as `'`, `@` or `$`. "
            "Strings use double quotes; comments start with `#`.",
            _N + "    conv(64, 3) @ relu\n}\n",
            _N + "    conv(64, 3); relu\n}\n",
        ),
        Code(
            "E002",
            "unexpected token",
            "The parser met a token where the grammar does not allow it. The message says what it expected "
            "in words; the common slips are a missing comma between arguments, `=` where a label needs `:` "
            "and `:` where a keyword argument needs `=`. After an error the parser skips to the next line, so "
            "independent syntax errors are all reported in one run.",
            _N + "    conv(64, 3 padding = 1)\n    conv1 = conv(64, 3)\n}\n",
            _N + "    conv(64, 3, padding = 1)\n    conv1: conv(64, 3)\n}\n",
        ),
        Code(
            "E003",
            "unclosed bracket",
            "A `(`, `[` or `{` is never closed: the file ends, or a new statement starts, while it is still "
            "open. The error points at the bracket that is left open. For a `{`, the layout tells which body "
            "lacks its `}`: the first line inside it indented no deeper than the `{`'s own line, or starting "
            "with `block`, `network` or `import`, is where the body ended.",
            _N + "    conv(64, 3\n    relu\n}\n",
            _N + "    conv(64, 3)\n    relu\n}\n",
        ),
        Code(
            "E004",
            "invalid string",
            "A string literal has an escape sequence the language does not know. Strings allow `\\\\`, `\\\"`, "
            "`\\n` and `\\t`.",
            _N + '    conv(64, 3, padding = "sa\\me")\n}\n',
            _N + '    conv(64, 3, padding = "same")\n}\n',
        ),
        Code(
            "E005",
            "number out of range",
            "A number literal is too large to be a size or a float (more than 2^62, or a float that overflows).",
            _N + "    conv(1e400, 3)\n}\n",
            _N + "    conv(64, 3)\n}\n",
        ),
        # ------------------------------------------------------------- names
        Code(
            "E101",
            "unknown layer or block",
            "A statement calls a name that is neither a built-in layer (see `cnnspec layers`) nor a block "
            "defined in the file or its imports. The help suggests the closest name.",
            _N + "    convv(64, 3)\n}\n",
            _N + "    conv(64, 3)\n}\n",
        ),
        Code(
            "E102",
            "unknown name",
            "An expression uses a name that is not a parameter, a loop variable, a `let` binding, a block or "
            "a layer in scope.",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(widht, 3)\n}\n",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
        ),
        Code(
            "E103",
            "join used as a call",
            "`concat`, `add` and `mul` join branches: they take a body of statements, one per branch, not "
            "arguments.",
            _N + "    add(conv(3, 1), identity)\n}\n",
            _N + "    add { conv(3, 1); identity }\n}\n",
        ),
        Code(
            "E104",
            "layer or block used as a group name",
            "`name { ... }` names a group of statements; the name must not be a layer or a block, because "
            "`conv { ... }` is almost always a forgotten call.",
            _N + "    conv { relu }\n}\n",
            _N + "    stem: { conv(8, 3); relu }\n}\n",
        ),
        Code(
            "E105",
            "unknown function",
            "An expression calls a function that is not one of the built-in pure functions (min, max, round, "
            "int, float, abs, len, sum, cumsum, ceil, floor, log, exp, sqrt, pow, range, divisible).",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(maximum(width, 8), 3)\n}\n",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(max(width, 8), 3)\n}\n",
        ),
        Code(
            "E106",
            "`init` names an unknown layer",
            "An `init` rule applies to every layer of a kind; the kind must be a built-in layer.",
            _N + "    init convv: weight = kaiming_normal()\n    conv(8, 3)\n}\n",
            _N + "    init conv: weight = kaiming_normal()\n    conv(8, 3)\n}\n",
        ),
        Code(
            "E107",
            "unknown attribute of a shape",
            "`in` is the shape of a block's input: a feature map has `channels`, `height` and `width`, a flat "
            "input has `features`; both have `rank` and `shape`.",
            "block B() { conv(in.chanels, 3) }\n" + _N + "    B()\n}\n",
            "block B() { conv(in.channels, 3) }\n" + _N + "    B()\n}\n",
        ),
        Code(
            "E108",
            "unknown initialisation scheme",
            "An `init` rule names a scheme that cnnspec does not know; the help lists the schemes.",
            _N + "    init conv: weight = kaiming(mode = \"fan_out\")\n    conv(8, 3)\n}\n",
            _N + "    init conv: weight = kaiming_normal(mode = \"fan_out\")\n    conv(8, 3)\n}\n",
        ),
        # ------------------------------------------------- values, arguments
        Code(
            "E202",
            "`in` is not available here",
            "`in` is the shape of the current block's input; network parameters and the arguments of a "
            "network alias are evaluated before there is any input.",
            "network Net(width = in.channels) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
        ),
        Code(
            "E203",
            "arithmetic error",
            "Division (`/`, `//`, `%`) by zero, or a result that is not a finite number.",
            "network Net(groups = 0) {\n    input: 3 x 32 x 32\n    conv(64 // groups, 3)\n}\n",
            "network Net(groups = 1) {\n    input: 3 x 32 x 32\n    conv(64 // groups, 3)\n}\n",
        ),
        Code(
            "E204",
            "wrong type in an expression",
            "An operator or attribute is applied to a value of the wrong type: arithmetic on a string or a "
            "list, `not` on a number, indexing something that is not a list.",
            'network Net(width = "64") {\n    input: 3 x 32 x 32\n    conv(width * 2, 3)\n}\n',
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width * 2, 3)\n}\n",
        ),
        Code(
            "E205",
            "index out of range",
            "A list is indexed past its end.",
            "network Net(widths = [16, 32]) {\n    input: 3 x 32 x 32\n    conv(widths[2], 3)\n}\n",
            "network Net(widths = [16, 32]) {\n    input: 3 x 32 x 32\n    conv(widths[1], 3)\n}\n",
        ),
        Code(
            "E207",
            "missing argument",
            "A layer or block is called without a required argument; the help shows the signature.",
            _N + "    conv(64)\n}\n",
            _N + "    conv(64, 3)\n}\n",
        ),
        Code(
            "E208",
            "argument given twice",
            "The same argument is given positionally and by keyword, or twice by keyword.",
            _N + "    conv(64, 3, kernel = 3)\n}\n",
            _N + "    conv(64, kernel = 3)\n}\n",
        ),
        Code(
            "E209",
            "unknown keyword argument",
            "A keyword argument names no parameter of the layer or block; the help suggests the closest one "
            "and shows the signature.",
            _N + "    conv(64, 3, strid = 2)\n}\n",
            _N + "    conv(64, 3, stride = 2)\n}\n",
        ),
        Code(
            "E210",
            "too many positional arguments",
            "A call gives more positional arguments than the layer or block has parameters.",
            _N + "    relu(1)\n}\n",
            _N + "    relu\n}\n",
        ),
        Code(
            "E211",
            "argument of the wrong type",
            "An argument value has the wrong type for its parameter, e.g. a string where a size is needed.",
            _N + '    conv("64", 3)\n}\n',
            _N + "    conv(64, 3)\n}\n",
        ),
        Code(
            "E212",
            "value out of range",
            "A value has the right type but lies outside its range: negative or zero channels, a zero "
            "stride, a dropout probability outside [0, 1], a negative aux weight.",
            _N + "    conv(64, 3, stride = 0)\n    dropout(1.5)\n}\n",
            _N + "    conv(64, 3, stride = 1)\n    dropout(0.5)\n}\n",
        ),
        Code(
            "E213",
            "wrong number of input dimensions",
            "`input:` takes C x H x W for images, N x D for a sequence of N tokens of D features (attention), "
            "or one number for flat features. The batch is not part of it.",
            "network Net {\n    input: 1 x 3 x 32 x 32\n    relu\n}\n",
            "network Net {\n    input: 1 x 32 x 32\n    relu\n}\n",
        ),
        Code(
            "E214",
            "no input shape",
            "A network must say the shape of its input, in an `input:` statement at the start of its body "
            "(or with --input).",
            "network Net {\n    conv(64, 3)\n}\n",
            "network Net {\n    input: 3 x 32 x 32\n    conv(64, 3)\n}\n",
        ),
        Code(
            "E217",
            "bad repetition count",
            "`stmt * n` repeats a statement n times; n must be an int of at least 0.",
            _N + "    relu * 2.5\n}\n",
            _N + "    relu * 2\n}\n",
        ),
        Code(
            "E218",
            "bad naming template",
            'A string label on a repeated statement names the copies: `"layer{1}": B() * 3` names them '
            "layer1, layer2, layer3. It needs exactly one `{N}`. Other braces in a label hold an expression "
            '(`"block{s}-{i}"` in a `for`), which must parse and give an int or a string.',
            _N + '    "layer": relu * 3\n}\n',
            _N + '    "layer{1}": relu * 3\n}\n',
        ),
        Code(
            "E220",
            "`if` needs true or false",
            "The condition of an `if` statement must be a bool; compare numbers explicitly.",
            "network Net(deep = 1) {\n    input: 3 x 32 x 32\n    if deep { relu }\n}\n",
            "network Net(deep = true) {\n    input: 3 x 32 x 32\n    if deep { relu }\n}\n",
        ),
        Code(
            "E221",
            "`for` needs a list",
            "`for x in ...` iterates over a list; use `range(n)` to repeat n times.",
            _N + "    for i in 3 { relu }\n}\n",
            _N + "    for i in range(3) { relu }\n}\n",
        ),
        Code(
            "E222",
            "`init` sets weight or bias",
            "An `init` rule sets a layer's `weight` or `bias`, nothing else.",
            _N + "    init conv: kernel = zeros()\n    conv(8, 3)\n}\n",
            _N + "    init conv: bias = zeros()\n    conv(8, 3)\n}\n",
        ),
        Code(
            "E224",
            "bad initialisation argument",
            "An initialisation scheme takes only its own keyword arguments, each with a value it can use: "
            "`mode` is \"fan_in\" or \"fan_out\", `nonlinearity` one that torch.nn.init.calculate_gain "
            "knows, a standard deviation is not negative, `[a, b]` is not empty, and the rest are finite numbers. "
            "They are checked statically, before `compile` applies the scheme.",
            _N + "    init conv: weight = normal(sigma = 0.1)\n    conv(8, 3)\n}\n",
            _N + "    init conv: weight = normal(std = 0.1)\n    conv(8, 3)\n}\n",
        ),
        Code(
            "E227",
            "initialisation needs two or more dimensions",
            "`kaiming_*` and `xavier_*` scale by a tensor's fan-in and fan-out, which a tensor of one "
            "dimension does not have: every bias, and the weight of a batch norm or group norm.",
            _N + "    init batchnorm: weight = kaiming_normal(mode = \"fan_out\")\n    conv(8, 3)\n    batchnorm\n}\n",
            _N + "    init batchnorm: weight = ones\n    conv(8, 3)\n    batchnorm\n}\n",
        ),
        Code(
            "E225",
            "bad module path pattern",
            "An `init` pattern is dot-separated names, each of which may hold `*` (any run of characters "
            "within the name), `?` or `[...]`; it cannot be empty or have an empty name between dots.",
            _N + '    init conv "stem..conv": weight = zeros\n    stem: { conv: conv(8, 3) }\n}\n',
            _N + '    init conv "stem.conv": weight = zeros\n    stem: { conv: conv(8, 3) }\n}\n',
        ),
        Code(
            "E226",
            "bad call of a built-in function",
            "A built-in function got arguments it cannot use; the help shows its signature.",
            _N + "    conv(max(), 3)\n}\n",
            _N + "    conv(max(8, 16), 3)\n}\n",
        ),
        # ------------------------------------------------------------ shapes
        Code(
            "E301",
            "kernel does not fit",
            "A convolution or pooling window is larger than its (padded) input. The message shows the "
            "arithmetic for the dimension that does not fit. `window_attention`'s window must fit the map, "
            "and its shift must be less than the window.",
            "network Net {\n    input: 3 x 5 x 5\n    conv(64, 7)\n}\n",
            "network Net {\n    input: 3 x 5 x 5\n    conv(64, 7, padding = 1)\n}\n",
        ),
        Code(
            "E302",
            "residual shapes differ",
            "A `residual` adds its body's output to its input. When the body changes the shape, a `shortcut` "
            "must project the input to the body's shape.",
            _N + "    residual { conv(16, 3, padding = 1) }\n}\n",
            _N + "    residual { conv(16, 3, padding = 1) } shortcut proj { conv(16, 1) }\n}\n",
        ),
        Code(
            "E303",
            "join branches disagree",
            "`concat` needs every branch to keep the same height and width; `add` needs the same shape; "
            "`mul` needs shapes that broadcast. The notes show each branch's shape.",
            _N + "    concat {\n        branch1: conv(8, 1)\n        branch2: conv(8, 1, stride = 2)\n    }\n}\n",
            _N + "    concat {\n        branch1: conv(8, 1)\n        branch2: conv(8, 1)\n    }\n}\n",
        ),
        Code(
            "E304",
            "flat input where a feature map is needed, or the reverse",
            "Convolutions, pooling and the other spatial layers need C×H×W feature maps; `flatten` turns a "
            "map into flat features (and `linear` acts on the last dimension of any shape). `attention` needs "
            "N×D tokens, `window_attention` an H×W×C map.",
            _N + "    flatten\n    conv(8, 3)\n}\n",
            _N + "    conv(8, 3)\n    flatten\n}\n",
        ),
        Code(
            "E305",
            "groups do not divide the channels",
            "A grouped convolution splits its input and output channels into `groups` equal parts; group "
            "normalisation splits the channels into groups. The number of groups must divide them, as the "
            "heads of `attention` and `window_attention` must divide the width.",
            "network Net {\n    input: 64 x 32 x 32\n    conv(64, 3, groups = 3)\n}\n",
            "network Net {\n    input: 64 x 32 x 32\n    conv(64, 3, groups = 4)\n}\n",
        ),
        Code(
            "E306",
            "invalid padding",
            'Padding "same" needs stride 1, and torch pads pooling windows by at most half the kernel.',
            _N + '    conv(8, 3, stride = 2, padding = "same")\n}\n',
            _N + "    conv(8, 3, stride = 2, padding = 1)\n}\n",
        ),
        Code(
            "E310",
            "dimension out of range",
            "A tensor op names a dimension its input does not have, or the batch dimension, which no op may "
            "move or remove. Dims are torch's own, the batch included: dim 0 is the batch, dim 1 the channels "
            "of a C×H×W map, and a negative dim counts from the end.",
            _N + "    transpose(1, 4)\n}\n",
            _N + "    transpose(2, 3)\n}\n",
        ),
        Code(
            "E311",
            "sizes do not match",
            "`reshape`'s sizes must hold as many elements as its input (with a -1 among them, the others must "
            "divide them); `chunk`'s count must divide the dimension it splits, or its list of sizes add up to it. "
            "The message shows both shapes.",
            _N + "    reshape([3, 1000])\n}\n",
            _N + "    reshape([3, 1024])\n}\n",
        ),
        Code(
            "E312",
            "not a permutation",
            "`permute` takes every dimension of its input once, the batch (dim 0) first.",
            _N + "    permute([0, 1, 2, 2])\n}\n",
            _N + "    permute([0, 2, 3, 1])\n}\n",
        ),
        Code(
            "E313",
            "index, slice or padding out of range",
            "`select` and `chunk` pick an index the dimension has; `slice` and `pad` leave at least one "
            "element in every dimension.",
            _N + "    select(1, 3)\n}\n",
            _N + "    select(1, 2)\n}\n",
        ),
        # ------------------------------------------- files, definitions, structure
        Code(
            "E401",
            "cannot read a file",
            "The spec or one of its imports cannot be read: no such file, a directory, no permission, or not "
            "UTF-8 text. An import is looked for beside the importing file, then in each `--path` directory "
            "and those of CNNSPEC_PATH, then among the stock specs; the error lists every place looked.",
            'import "blocks/resnet_blocks.cnn"\n' + _N + "    relu\n}\n",
            'import "resnet.cnn"\n' + _N + "    relu\n}\n",
        ),
        Code(
            "E402",
            "import cycle",
            "Files import each other in a cycle; the message shows the cycle. Move the shared blocks into a "
            "file that both import.",
            '# a.cnn\nimport "b.cnn"\n# b.cnn\nimport "a.cnn"\n',
            '# a.cnn\nimport "common.cnn"\n# b.cnn\nimport "common.cnn"\n',
        ),
        Code(
            "E403",
            "defined twice",
            "Two blocks or networks have the same name (in one file or across imports).",
            "block B() { relu }\nblock B() { relu }\n" + _N + "    B()\n}\n",
            "block B() { relu }\n" + _N + "    B()\n}\n",
        ),
        Code(
            "E404",
            "name used twice in a scope",
            "Two statements of one scope have the same label; module paths must be unique because they are "
            "the state_dict keys.",
            _N + "    conv1: conv(8, 3)\n    conv1: conv(8, 3)\n}\n",
            _N + "    conv1: conv(8, 3)\n    conv2: conv(8, 3)\n}\n",
        ),
        Code(
            "E405",
            "recursive block",
            "A block instantiates itself, directly or through other blocks; the message shows the cycle. "
            "Repeat with `*` or `for` instead.",
            "block A() { B() }\nblock B() { A() }\n" + _N + "    A()\n}\n",
            "block A() { relu }\n" + _N + "    A() * 2\n}\n",
        ),
        Code(
            "E406",
            "`init` outside the network's top level",
            "`init` rules apply to the whole network, so they belong at the top level of its body "
            "(or in an `if` there, to switch them with a network parameter).",
            "block B() {\n    init conv: weight = zeros()\n    conv(8, 3)\n}\n" + _N + "    B()\n}\n",
            "block B() { conv(8, 3) }\n" + _N + "    init conv: weight = zeros()\n    B()\n}\n",
        ),
        Code(
            "E407",
            "`input` in the wrong place",
            "`input:` may only open a network's body; a block takes its input from the statement before it.",
            _N + "    relu\n    input: 3 x 64 x 64\n}\n",
            "network Net {\n    input: 3 x 64 x 64\n    relu\n}\n",
        ),
        Code(
            "E408",
            "group named twice",
            "A named group `name { ... }` already has its name; a label in front of it is a second one.",
            _N + "    a: b { relu }\n}\n",
            _N + "    a: { relu }\n}\n",
        ),
        Code(
            "E409",
            "`let` as a branch",
            "Each statement of a join's body is a branch; a `let` makes no branch. Put it before the join.",
            _N + "    concat { let w = 8; conv(w, 1); conv(w, 1) }\n}\n",
            _N + "    let w = 8\n    concat { conv(w, 1); conv(w, 1) }\n}\n",
        ),
        Code(
            "E410",
            "a join needs two branches",
            "`concat`, `add` and `mul` join at least two branches; each statement in the braces is one branch.",
            _N + "    concat { conv(8, 1) }\n}\n",
            _N + "    concat { conv(8, 1); conv(8, 3, padding = 1) }\n}\n",
        ),
        Code(
            "E411",
            "empty `aux`",
            "An `aux` head needs at least one layer.",
            _N + "    aux { }\n    relu\n}\n",
            _N + "    aux { flatten; linear(10) }\n    relu\n}\n",
        ),
        Code(
            "E412",
            "parameter named twice",
            "A block or network names two of its parameters alike, so a call could not tell which one an "
            "argument gives.",
            "block B(c, c) { conv(c, 1) }\n" + _N + "    B(8, 16)\n}\n",
            "block B(c, d) { conv(c, 1); conv(d, 1) }\n" + _N + "    B(8, 16)\n}\n",
        ),
        Code(
            "E413",
            "a split's branches and chunks differ",
            "`split(chunks, dim) { ... }` hands branch i chunk i of its input: it needs one branch per chunk.",
            _N + "    split(2) { identity; conv(1, 1); conv(1, 1) }\n}\n",
            _N + "    split([1, 2]) { identity; conv(2, 1) }\n}\n",
        ),
        # ------------------------------------------- network selection, --set
        Code(
            "E501",
            "no such network",
            "--network names a network the file does not define, or a network alias refers to one that is "
            "not defined with a body.",
            _N + "    relu\n}\n",
            _N + "    relu\n}\n",
            args="--network Nett",
        ),
        Code(
            "E502",
            "no network",
            "The file defines blocks only; there is nothing to check. Add a network.",
            "block B() { relu }\n",
            "block B() { relu }\n" + _N + "    B()\n}\n",
        ),
        Code(
            "E503",
            "several networks",
            "The file defines more than one network and none has the file's name; choose one with --network.",
            _N + "    relu\n}\nnetwork Other {\n    input: 3 x 32 x 32\n    relu\n}\n",
            _N + "    relu\n}\n",
        ),
        Code(
            "E504",
            "--set of an unknown parameter",
            "--set NAME=VALUE overrides a network parameter; the network has no parameter of that name.",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
            args="--set widht=32",
        ),
        Code(
            "E505",
            "--set of the wrong type",
            "A --set value must have the type of the parameter's default.",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
            args='--set width="wide"',
        ),
        Code(
            "E506",
            "network parameter without a value",
            "A network parameter has no default and no --set gives it a value.",
            "network Net(width) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
            "network Net(width = 64) {\n    input: 3 x 32 x 32\n    conv(width, 3)\n}\n",
        ),
        # ------------------------------------------------------------ limits
        Code(
            "E601",
            "repetition over the limit",
            "A repetition count is larger than the limit (1,000,000); no real network repeats a layer that "
            "often.",
            _N + "    relu * 10000000\n}\n",
            _N + "    relu * 2\n}\n",
        ),
        Code(
            "E602",
            "too many layers",
            "The unrolled network has more layers than the limit (1,000,000). Check the repetition counts "
            "and loops.",
            _N + "    for i in range(1000) { relu * 2000 }\n}\n",
            _N + "    for i in range(10) { relu * 5 }\n}\n",
        ),
        Code(
            "E603",
            "nested too deep",
            "Blocks and groups are nested deeper than the limit (64 block instances, 80 levels of statements in all).",
            "",
            "",
        ),
        Code(
            "E604",
            "value too large",
            "An expression produced a number beyond ±2^62, a list longer than 1,000,000 items, or a huge "
            "power.",
            _N + "    conv(2 ** 100, 3)\n}\n",
            _N + "    conv(2 ** 6, 3)\n}\n",
        ),
        Code(
            "E605",
            "too many parameters",
            "The network has more trainable parameters than the limit (100 billion), about 400 GB of fp32 "
            "weights.",
            "network Net {\n    input: 1000000\n    linear(1000000) * 200\n}\n",
            "network Net {\n    input: 1000\n    linear(1000) * 2\n}\n",
        ),
        Code(
            "E606",
            "nested too deep in the source",
            "Brackets or expressions are nested deeper than the parser allows (200 levels). No real spec "
            "comes near; this guards against generated or hostile input.",
            "",
            "",
        ),
        Code(
            "E607",
            "input too large",
            "A spec file is larger than the limits (1 MiB, 10,000 lines, 30,000 tokens: names, numbers, "
            "strings, symbols and line ends), or a program imports more than 1,000 files. No written spec comes "
            "near (the stock specs are a few KB); the limits keep a check of any file to seconds. Repeat layers "
            "with `* N`, `for` loops and blocks.",
            "",
            "",
        ),
        Code(
            "E608",
            "too much work",
            "Evaluating the spec takes more steps than the limit of 5,000,000 (loops that create no layers, "
            "huge lists built again and again, or some 25,000 layers and more: a layer costs 200 steps, a "
            "statement 20, an operation 10, a list item 1). The check stops within seconds and a few hundred "
            "MB instead of running for hours; a repetition whose copies would pass the limit stops at its "
            "first copy.",
            _N + "    for i in range(100000) { for j in range(100000) { let k = i * j } }\n    relu\n}\n",
            _N + "    relu\n}\n",
        ),
        Code(
            "E609",
            "network would not fit in memory",
            "`cnnspec compile` estimates the memory the module needs from the static check (parameters, "
            "buffers and, for .pt2, activations) and refuses a network that would not fit in the memory "
            "available. Pass --insist to compile anyway.",
            "",
            "",
        ),
        Code(
            "E610",
            "literal too long",
            "A name is longer than 256 characters, a string longer than 4,096, or a list written out has more "
            "than 10,000 items. No spec needs them; build long lists with `range` or a comprehension.",
            "",
            "",
        ),
        # ---------------------------------------------------------- pipeline plans
        Code(
            "E701",
            "too many pipeline stages",
            "`--pipeline N` asks for more stages than the network has places to cut, plus one. A boundary "
            "between stages falls only where exactly one tensor crosses: never inside a residual block (its "
            "shortcut crosses too) or between the branches of a join such as an Inception module. The message "
            "says how many stages are possible.",
            _N + "    residual { conv(3, 3, padding = 1); relu }\n}\n",
            _N + "    conv(3, 3, padding = 1)\n    relu\n    conv(8, 3)\n}\n",
            "--pipeline 3",
        ),
        Code(
            "E702",
            "cut marker where a stage cannot end",
            "A `cut` marker pins a pipeline boundary right after itself, so exactly one tensor may cross "
            "there. Inside a residual or a join's branches more than one does: the message names each "
            "tensor's shape and the layer that makes it. At the end of an aux head, or after the network's "
            "output, what the marker follows is read by no later layer: the tensor that crosses is another, "
            "which the message names. A marker with no layer between it and the input, another marker or the "
            "end would leave a stage empty.",
            _N + "    residual { conv(3, 3, padding = 1); cut; relu }\n}\n",
            _N + "    residual { conv(3, 3, padding = 1); relu }\n    cut\n    conv(8, 3)\n}\n",
            "--pipeline 2",
        ),
        Code(
            "E703",
            "more cut markers than boundaries",
            "Every `cut` marker in the network is a pipeline boundary, so N stages hold at most N - 1 markers. "
            "A marker in a block counts once for each instance of the block.",
            _N + "    conv(8, 3); cut; conv(8, 3); cut; conv(8, 3)\n}\n",
            _N + "    conv(8, 3); cut; conv(8, 3); conv(8, 3)\n}\n",
            "--pipeline 2",
        ),
        # ---------------------------------------------------------- warnings
        Code(
            "W001",
            "unused block",
            "A block defined in the checked file is never used by any network or block. Remove it, or "
            "ignore the warning if the file is a library.",
            "block Unused() { relu }\n" + _N + "    relu\n}\n",
            _N + "    relu\n}\n",
        ),
        Code(
            "W002",
            "unused parameter",
            "A block or network parameter is never used in its body. Name it with a leading `_` to keep it "
            "for a uniform signature without the warning.",
            "block B(c, k) { conv(c, 3) }\n" + _N + "    B(8, 3)\n}\n",
            "block B(c, k) { conv(c, k) }\n" + _N + "    B(8, 3)\n}\n",
        ),
        Code(
            "W003",
            "shortcut never built",
            "In every instance of this `residual` the body keeps the input's shape, so identity is used and "
            "the shortcut is never built.",
            _N + "    residual { relu } shortcut proj { conv(3, 1) }\n}\n",
            _N + "    residual { relu }\n}\n",
        ),
        Code(
            "W004",
            "unused `let`",
            "A `let` binding is never used: its value is computed and ignored.",
            _N + "    let width = 64\n    conv(32, 3)\n}\n",
            _N + "    let width = 64\n    conv(width, 3)\n}\n",
        ),
        Code(
            "W005",
            "output ignored",
            "An `aux` head with weight 0 adds nothing to the loss: its output is computed and ignored.",
            _N + "    aux(weight = 0) { flatten; linear(10) }\n    relu\n}\n",
            _N + "    aux(weight = 0.3) { flatten; linear(10) }\n    relu\n}\n",
        ),
        Code(
            "W006",
            "module renamed for torch",
            "A module name that torch or the generated Python cannot use as it is (`forward`, `training`, a "
            "Python keyword, a name that changes under Unicode normalisation or holds a quote or a backslash) "
            "is compiled under a safe name; the warning says which. state_dict keys use the safe name. Other "
            "names torch takes are kept exactly, identifiers or not (`\"block1-0\"`, as torchvision's RegNet "
            "names its blocks).",
            _N + "    forward: conv(8, 3)\n}\n",
            _N + "    conv_forward: conv(8, 3)\n}\n",
        ),
        Code(
            "W007",
            "`init` pattern matches nothing",
            "An `init` rule with a module path pattern matches no layer of its kind, so it changes nothing; "
            "the pattern's names are compared one by one, and `*` does not cross a dot.",
            _N + '    init conv "stem.*.conv": weight = zeros\n    stem: { conv: conv(8, 3) }\n}\n',
            _N + '    init conv "stem.*": weight = zeros\n    stem: { conv: conv(8, 3) }\n}\n',
        ),
    )
}

# Every code as a name, so that a call site reads diags.error(E605, ...) and a typo is a NameError.
# tests/test_codes.py keeps these equal to the CODES registry.
E001 = "E001"
E002 = "E002"
E003 = "E003"
E004 = "E004"
E005 = "E005"
E101 = "E101"
E102 = "E102"
E103 = "E103"
E104 = "E104"
E105 = "E105"
E106 = "E106"
E107 = "E107"
E108 = "E108"
E202 = "E202"
E203 = "E203"
E204 = "E204"
E205 = "E205"
E207 = "E207"
E208 = "E208"
E209 = "E209"
E210 = "E210"
E211 = "E211"
E212 = "E212"
E213 = "E213"
E214 = "E214"
E217 = "E217"
E218 = "E218"
E220 = "E220"
E221 = "E221"
E222 = "E222"
E224 = "E224"
E225 = "E225"
E226 = "E226"
E227 = "E227"
E301 = "E301"
E302 = "E302"
E303 = "E303"
E304 = "E304"
E305 = "E305"
E306 = "E306"
E310 = "E310"
E311 = "E311"
E312 = "E312"
E313 = "E313"
E401 = "E401"
E402 = "E402"
E403 = "E403"
E404 = "E404"
E405 = "E405"
E406 = "E406"
E407 = "E407"
E408 = "E408"
E409 = "E409"
E410 = "E410"
E411 = "E411"
E412 = "E412"
E413 = "E413"
E501 = "E501"
E502 = "E502"
E503 = "E503"
E504 = "E504"
E505 = "E505"
E506 = "E506"
E601 = "E601"
E602 = "E602"
E603 = "E603"
E604 = "E604"
E605 = "E605"
E606 = "E606"
E607 = "E607"
E608 = "E608"
E609 = "E609"
E610 = "E610"
E701 = "E701"
E702 = "E702"
E703 = "E703"
W001 = "W001"
W002 = "W002"
W003 = "W003"
W004 = "W004"
W005 = "W005"
W006 = "W006"
W007 = "W007"


def title(code: str) -> str:
    """The short title of a code."""
    return CODES[code].title


def markdown() -> str:
    """docs/errors.md: every code with its explanation and a wrong and a fixed example."""
    out = [
        "# Diagnostic codes",
        "",
        "<!-- Generated by `python -m cnnspec.diagnostics.codes > docs/errors.md`; "
        "edit cnnspec/diagnostics/codes.py instead. -->",
        "",
        "Every error and warning of cnnspec has a stable code. The text form is",
        "",
        "```text",
        "path:line:col: error[E0xx]: message",
        "  |",
        "3 |     the source line",
        "  |     ^^^^^^^^^^^^^^^ under the whole span",
        "note: a related place (at path:line:col), or the chain of block instantiations",
        "help: how to fix it",
        "```",
        "",
        "`--diagnostics json` prints the same diagnostics as a JSON list of",
        "`{file, line, col, end_line, end_col, severity, code, message, notes, help}`",
        "(on stdout when the spec has errors; on stderr, with the warnings, when it is valid).",
        "",
        "Codes by group: E0xx syntax, E1xx names, E2xx values and arguments, E3xx shapes,",
        "E4xx files, definitions and structure, E5xx network selection and `--set`, E6xx limits,",
        "E7xx pipeline plans, W0xx warnings.",
        "",
        "| code | title |",
        "|------|-------|",
    ]
    out += [f"| [{c.code}](#{c.code.lower()}) | {c.title} |" for c in CODES.values()]
    for c in CODES.values():
        out += ["", f"## {c.code}", "", f"**{c.title}.** {c.explanation}"]
        if c.args:
            out += ["", f"Run with `{c.args}`."]
        if c.wrong:
            out += ["", "Wrong:", "", "```cnn", c.wrong.rstrip("\n"), "```"]
        if c.fixed:
            out += ["", "Fixed:", "", "```cnn", c.fixed.rstrip("\n"), "```"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
