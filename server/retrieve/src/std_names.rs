//! Names the language's standard library defines. A repository may define a
//! method called `clone` or `get` too, but a call to one of these names on an
//! unknown receiver most likely means the standard one, so looking it up in the
//! index only fills the context with the wrong definition.

const RUST: &[&str] = &[
    // Prelude and common std types and traits.
    "Arc", "BTreeMap", "BTreeSet", "Box", "Clone", "Copy", "Cow", "Debug", "Default", "Display", "Eq", "Err", "Error",
    "From", "Hash", "HashMap", "HashSet", "Into", "IntoIterator", "Iterator", "Mutex", "None", "Ok", "Option", "Ord",
    "PartialEq", "PartialOrd", "Rc", "RefCell", "Result", "RwLock", "Send", "Sized", "Some", "String", "Sync", "Vec",
    "VecDeque", "AsRef", "AsMut", "Deref", "DerefMut", "Drop", "Fn", "FnMut", "FnOnce", "ToString", "TryFrom", "TryInto",
    "Read", "Write", "Seek", "BufRead", "PhantomData", "Ordering", "Duration", "Instant", "Path", "PathBuf",
    // Methods of std traits, iterators, collections, Option/Result and str.
    "all", "and_then", "any", "as_bytes", "as_mut", "as_ref", "as_slice", "as_str", "borrow", "borrow_mut", "bytes",
    "capacity", "chain", "chars", "clear", "clone", "cloned", "cmp", "collect", "contains", "contains_key", "copied",
    "count", "dedup", "default", "deref", "drain", "ends_with", "entry", "enumerate", "eq", "err", "expect", "extend",
    "filter", "filter_map", "find", "first", "flat_map", "flatten", "flush", "fmt", "fold", "for_each", "from", "get",
    "get_mut", "hash", "insert", "into", "into_iter", "is_empty", "is_err", "is_none", "is_ok", "is_some", "iter",
    "iter_mut", "join", "keys", "last", "len", "lines", "lock", "map", "map_err", "max", "max_by_key", "min",
    "min_by_key", "ne", "next", "ok", "ok_or", "ok_or_else", "or_default", "or_insert", "or_insert_with", "partial_cmp",
    "peek", "pop", "position", "push", "push_str", "read", "remove", "reserve", "retain", "rev", "skip", "sort",
    "sort_by", "sort_by_key", "sort_unstable", "split", "starts_with", "sum", "take", "to_owned", "to_string", "to_vec",
    "trim", "truncate", "try_from", "try_into", "unwrap", "unwrap_or", "unwrap_or_default", "unwrap_or_else", "values",
    "with_capacity", "write", "write_all", "zip",
    // Macros and attributes.
    "assert", "assert_eq", "assert_ne", "cfg", "debug_assert", "derive", "eprintln", "format", "matches", "panic",
    "println", "test", "todo", "unimplemented", "unreachable", "vec", "writeln",
];

const PYTHON: &[&str] = &[
    // Builtins.
    "abs", "all", "any", "bool", "bytes", "callable", "chr", "classmethod", "dict", "dir", "divmod", "enumerate",
    "filter", "float", "format", "frozenset", "getattr", "hasattr", "hash", "hex", "id", "input", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "open", "ord", "pow", "print",
    "property", "range", "repr", "reversed", "round", "set", "setattr", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "type", "vars", "zip", "self", "cls", "dataclass",
    "Exception", "ValueError", "TypeError", "KeyError", "IndexError", "AttributeError", "RuntimeError", "OSError",
    "NotImplementedError", "StopIteration",
    // Methods of str, list, dict, set and files.
    "append", "extend", "insert", "pop", "remove", "clear", "copy", "get", "items", "keys", "values", "update",
    "setdefault", "join", "split", "rsplit", "strip", "lstrip", "rstrip", "replace", "startswith", "endswith", "lower",
    "upper", "encode", "decode", "find", "count", "index", "add", "discard", "read", "readline", "write", "close",
    "tell", "seek", "flush",
    // Standard modules and their usual entry points.
    "os", "sys", "re", "json", "logging", "time", "datetime", "collections", "itertools", "functools", "typing",
    "pathlib", "io", "subprocess", "shutil", "getLogger", "path",
];

const GO: &[&str] = &[
    "append", "cap", "close", "copy", "delete", "len", "make", "new", "panic", "recover", "Error", "String", "fmt",
    "Println", "Printf", "Sprintf", "Errorf", "ctx", "context", "Context",
];

const JS: &[&str] = &[
    "Array", "Date", "Error", "JSON", "Map", "Math", "Object", "Promise", "Set", "String", "console", "filter", "find",
    "forEach", "includes", "join", "keys", "length", "log", "map", "parse", "push", "reduce", "slice", "some", "split",
    "stringify", "then", "values",
];

/// Whether `name` is most likely the standard library's in `lang` (a registry language name).
pub fn is_std_name(lang: Option<&str>, name: &str) -> bool {
    let list = match lang {
        Some("rust") => RUST,
        Some("python") => PYTHON,
        Some("go") => GO,
        Some("typescript" | "tsx" | "javascript") => JS,
        _ => return false,
    };
    list.contains(&name)
}
