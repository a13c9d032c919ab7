import { Command, type ErrorOptions, type Option } from 'commander';
import { DconnectError } from '../core/errors.js';

/**
 * A dconnect command: commander's `Command` with its refusals declared. `refuses(other, hints)` says
 * that each option named in `hints` cannot be given together with `other` (commander's
 * `Option.conflicts`, checked before the action runs) and what to do instead; commander's message
 * ("option '--fault <spec>' cannot be used with option '--live'") then carries that hint on the next
 * line, as a DconnectError's message does. `requires(name, other, hint)` says that `name` needs
 * `other` (commander has no such declaration; checked before the action too). Checks that depend on
 * values, not on which flags were given, stay in the command's own validator.
 */
export class CliCommand extends Command {
  /** `option other` (attribute names) -> what to do; in declaration order. */
  private readonly hints = new Map<string, string>();

  /** Each option in `hints` (by attribute name, `hostLanes` for --host-lanes) is refused with `other`. */
  refuses(other: string, hints: Record<string, string>): this {
    this.optionNamed(other);
    for (const [name, hint] of Object.entries(hints)) {
      this.optionNamed(name).conflicts(other);
      this.hints.set(`${name} ${other}`, hint);
    }
    return this;
  }

  /** Option `name` (attribute name) needs option `other`: refused before the action, with `hint`. */
  requires(name: string, other: string, hint: string): this {
    const a = this.optionNamed(name);
    const b = this.optionNamed(other);
    this.hook('preAction', () => {
      if (this.given(name) && !this.given(other)) throw new DconnectError('BAD_OPTION', `option '${a.flags}' needs option '${b.flags}'`, hint);
    });
    return this;
  }

  /** Whether the option was given (on the command line or through an implication), not a default. */
  private given(name: string): boolean {
    return this.getOptionValue(name) !== undefined && this.getOptionValueSource(name) !== 'default';
  }

  override error(message: string, options?: ErrorOptions): never {
    const hint = options?.code === 'commander.conflictingOption' ? this.conflictHint() : undefined;
    return super.error(hint === undefined ? message : `${message}\n  hint: ${hint}`, options);
  }

  /** The hint of the conflict commander reports: its first given option (in the command's order) with a declared conflict that is given too. */
  private conflictHint(): string | undefined {
    const given = this.options.filter((o) => this.given(o.attributeName()));
    for (const o of given) {
      const other = given.find((d) => this.hints.has(`${o.attributeName()} ${d.attributeName()}`));
      if (other) return this.hints.get(`${o.attributeName()} ${other.attributeName()}`);
    }
    return undefined;
  }

  private optionNamed(name: string): Option {
    const o = this.options.find((x) => x.attributeName() === name);
    if (!o) throw new Error(`${this.name()} has no option ${name}: declare its options before their conflicts`);
    return o;
  }
}
