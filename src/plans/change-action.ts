/** What a plan does to one resource, as plangate names it. */
export type ChangeAction = "create" | "update" | "replace" | "delete" | "read" | "move" | "import" | "forget";
