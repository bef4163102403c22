; Symbol definitions in JavaScript and JSX.
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(class_declaration name: (identifier) @name) @definition.class
(method_definition name: (property_identifier) @name) @definition.method
(field_definition property: (property_identifier) @name) @definition.field
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @definition.function)
(variable_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @definition.function)
(program (lexical_declaration (variable_declarator name: (identifier) @name value: [(string) (number) (object) (array) (call_expression) (new_expression) (template_string)]) @definition.constant))

; Imports: the module string and each imported name.
(import_statement source: (string (string_fragment) @import))
(import_specifier name: (identifier) @import)

; CommonJS: `exports.name = function…` defines a function; any other `object.name =
; function…` (`res.send = function send(body)`) a method of `object`.
(expression_statement (assignment_expression left: (member_expression object: (identifier) @_exports property: (property_identifier) @name) right: [(function_expression) (arrow_function)]) @definition.function (#eq? @_exports "exports"))
(expression_statement (assignment_expression left: (member_expression object: (_) @scope property: (property_identifier) @name) right: [(function_expression) (arrow_function)]) @definition.method (#not-eq? @scope "exports"))
; `const name = require("module")`: the module string and the name it is bound to.
(variable_declarator name: (identifier) @import value: (call_expression function: (identifier) @_require arguments: (arguments (string (string_fragment) @import))) (#eq? @_require "require"))
