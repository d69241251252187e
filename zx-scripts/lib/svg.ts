// What the kit's SVG pictures share (drill timelines, the zone matrix).

/** Text for an SVG element or attribute: &, <, > and " escaped. */
export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
