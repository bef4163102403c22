(function_declaration) @chunk
(generator_function_declaration) @chunk
(class_declaration) @chunk
(abstract_class_declaration) @chunk
(interface_declaration) @chunk
(enum_declaration) @chunk
(type_alias_declaration) @chunk
(method_definition) @chunk
(internal_module) @chunk
(lexical_declaration (variable_declarator value: [(arrow_function) (function_expression)])) @chunk
(export_statement) @chunk
