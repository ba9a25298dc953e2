import type { CommandProblem } from "../commands/parse-command.js";
import type { Templates } from "./templates.js";

/** Why a comment command is refused, worded by templates/command-problem.hbs (raw text: the usage reply escapes it). */
export const commandProblemText = (t: Templates, problem: CommandProblem): string => t.render("command-problem", problem).trim();
