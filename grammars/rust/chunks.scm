; Nodes that become chunks of their own. Big ones are split at nested chunk nodes.
(function_item) @chunk
(impl_item) @chunk
(trait_item) @chunk
(struct_item) @chunk
(enum_item) @chunk
(union_item) @chunk
(mod_item) @chunk
(macro_definition) @chunk
(function_signature_item) @chunk
