(function_declaration) @chunk
(generator_function_declaration) @chunk
(class_declaration) @chunk
(method_definition) @chunk
(lexical_declaration (variable_declarator value: [(arrow_function) (function_expression)])) @chunk
(export_statement) @chunk
(expression_statement (assignment_expression right: [(function_expression) (arrow_function)])) @chunk
