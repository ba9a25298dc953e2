const ENTITIES: Record<string, string> = { "&quot;": '"', "&#x27;": "'", "&#x3D;": "=", "&#x60;": "`", "&lt;": "<", "&gt;": ">", "&amp;": "&" };

/** Text as GitHub displays it: the HTML entities Handlebars writes render as their characters. */
export const asShown = (markdown: string) => markdown.replace(/&(quot|#x27|#x3D|#x60|lt|gt|amp);/g, (e) => ENTITIES[e]!);
